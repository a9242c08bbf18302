"""The README's "Using it as a library" example runs as written, against the session's real HAPI server (the
only change is the server's URL), and says "queued" when the server is down."""

from __future__ import annotations

import contextlib
import io
import re
import socket
from pathlib import Path

from fhir_safetyplan.delivery.outbox import Outbox

from .conftest import Fhir

REPO = Path(__file__).resolve().parents[2]
README_URL = "http://127.0.0.1:8080/fhir"


def library_example() -> str:
    """The one python code block of the README's "Using it as a library" section."""
    readme = REPO.joinpath("README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Using it as a library\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the section has one python example"
    code: str = blocks[0]
    assert code.count(README_URL) == 1, "the example names its server once"
    return code


def run_example(server_url: str, where: Path) -> str:
    """Run the README's example in ``where`` (which holds the repository's examples/) against ``server_url``;
    what it printed."""
    (where / "examples").symlink_to(REPO / "examples", target_is_directory=True)
    code = library_example().replace(README_URL, server_url)
    out = io.StringIO()
    with contextlib.chdir(where), contextlib.redirect_stdout(out):
        exec(compile(code, "README.md (Using it as a library)", "exec"), {"__name__": "readme_example"})
    return out.getvalue()


def test_readme_library_example_delivers_the_example_plan_through_an_outbox(
    hapi_base_url: str, fhir: Fhir, tmp_path: Path
) -> None:
    printed = run_example(hapi_base_url, tmp_path)

    status, _, written = printed.strip().partition(" ")
    assert status == "delivered", printed
    for rtype in ("QuestionnaireResponse", "CarePlan", "Flag", "DocumentReference", "Provenance"):
        assert f"'{rtype}/" in written, printed
    qr_id = re.search(r"'QuestionnaireResponse/([^']+)'", written)
    assert qr_id is not None
    stored = fhir.get(f"QuestionnaireResponse/{qr_id.group(1)}").json()
    assert stored["identifier"]["value"] == "example-01-alt-pa-plass"
    with Outbox(tmp_path / "outbox.sqlite") as outbox:
        assert [e.status for e in outbox.list()] == ["delivered"]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # closed again: connecting to it is refused


def test_readme_library_example_queues_the_plan_when_the_server_is_down(tmp_path: Path) -> None:
    printed = run_example(f"http://127.0.0.1:{_closed_port()}/fhir", tmp_path)

    assert printed.strip() == "queued []", printed
    with Outbox(tmp_path / "outbox.sqlite") as outbox:
        [entry] = outbox.list()
        assert entry.status == "pending" and entry.submission_id == "example-01-alt-pa-plass"
