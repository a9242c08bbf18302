"""Regenerate the committed outputs of every example: ``python examples/build.py``.

Each example folder holds one input — ``answers.json`` (an answers document) or ``input.json`` (a
QuestionnaireResponse from a form renderer) — and what the module makes of it:

- ``questionnaire-response.json``: the QuestionnaireResponse (``safetyplan respond``)
- ``extract.json``: the SDC ``$extract`` transaction Bundle (``safetyplan extract``)
- ``bundle.json``: the journal transaction Bundle (``safetyplan bundle``)
- ``journal-note.txt``: the human-readable journal note inside the bundle's DocumentReference

``tests/test_examples.py`` proves the committed files are exactly what the code produces.
All people in the examples are synthetic (synthetic identity numbers, invented HPR and organisation numbers).
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

from fhir_safetyplan import pipeline
from fhir_safetyplan.document import DocumentContext

HERE = Path(__file__).resolve().parent


def _dumps(resource: object) -> str:
    return json.dumps(resource, ensure_ascii=False, indent=2) + "\n"


def example_dirs() -> list[Path]:
    return sorted(
        p
        for p in HERE.iterdir()
        if p.is_dir() and ((p / "answers.json").exists() or (p / "input.json").exists())
    )


def input_of(folder: Path) -> Path:
    return folder / "answers.json" if (folder / "answers.json").exists() else folder / "input.json"


def outputs(folder: Path) -> dict[str, str]:
    """Every output file of one example, by file name."""
    data = json.loads(input_of(folder).read_text(encoding="utf-8"))
    ctx = DocumentContext()
    bundle = pipeline.build_bundle(data, ctx)
    note = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "DocumentReference"
    )
    text = base64.b64decode(note["content"][0]["attachment"]["data"]).decode("utf-8")
    return {
        "questionnaire-response.json": _dumps(pipeline.respond(data)),
        "extract.json": _dumps(pipeline.extract(data, ctx)),
        "bundle.json": _dumps(bundle),
        "journal-note.txt": text,
    }


def main() -> int:
    for folder in example_dirs():
        for name, text in outputs(folder).items():
            (folder / name).write_text(text, encoding="utf-8")
        print(folder.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
