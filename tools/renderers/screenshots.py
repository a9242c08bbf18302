"""Regenerate the README's renderer pictures (docs/img/*-nb.png) with the harness: ``python tools/renderers/screenshots.py``.

LHC-Forms: the nb form with example 01's complete response loaded. Refero: the nb form as adapted for it
(``safetyplan questionnaire --lang nb --renderer refero``), involvement "yes" and one safe channel picked, top part.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from fhir_safetyplan.form_ids import Link
from fhir_safetyplan.questionnaire import build_questionnaire
from fhir_safetyplan.rendering import for_renderer

ROOT = Path(__file__).resolve().parents[2]
IMG = ROOT / "docs" / "img"


def main() -> int:
    q = build_questionnaire("nb")
    qr = json.loads(
        (ROOT / "examples" / "01-alt-pa-plass" / "questionnaire-response.json").read_text("utf-8")
    )
    jobs = [
        {
            "renderer": "lforms",
            "questionnaire": q,
            "response": qr,
            "lang": "nb",
            "screenshot": str(IMG / "lforms-nb.png"),
        },
        {
            "renderer": "refero",
            "questionnaire": for_renderer(q, "refero"),
            "lang": "nb",
            "steps": [
                {"linkId": Link.INVOLVEMENT, "code": "Y"},
                {"linkId": Link.SAFE_CHANNELS, "code": "sms"},
            ],
            "screenshot": str(IMG / "refero-nb.png"),
            "screenshotHeight": 2250,
        },
    ]
    IMG.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "jobs.json"
        path.write_text(json.dumps(jobs), encoding="utf-8")
        done = subprocess.run(["node", str(ROOT / "tools" / "renderers" / "run.mjs"), str(path)], check=False)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
