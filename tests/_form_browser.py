"""Helpers of the browser tests of the form page: start a command that serves it, drive it in chromium.

The page is driven by ``tools/form-preview/drive-form.mjs`` (npm ``playwright-core`` with Debian's
``chromium``, headless, no browser download); see that file for the scenario format. Under ``CI`` a missing
browser, Node or driver fails the test instead of skipping it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from _guidance import GUIDANCE_KEYS
from _needs import unavailable
from _node import run_node
from _processes import answering

REPO = Path(__file__).resolve().parents[1]
TOOLS = REPO / "tools" / "form-preview"
DRIVER = TOOLS / "drive-form.mjs"
SAFETYPLAN = Path(sys.executable).parent / "safetyplan"

#: The nb form (content 1.1.0) filled in by clicks as a clinician would: a first conversation without the partner,
#: informed, involvement wanted, the advice given, not hidden from Helsenorge, safe contact only in person
#: (letters forbidden), every checklist point in place, one agreed action, no children on
#: either side, no other vulnerable people, no mental impairment, no risk assessment.
NB_STEPS: list[dict[str, Any]] = [
    {action: [link_id, value]}
    for action, link_id, value in (
        ("choose", "samtale.type", "Første samtale om sikkerhetsplan"),
        ("choose", "samtale.uten-partner", "Ja"),
        ("choose", "samtale.informert", "Ja"),
        ("choose", "samtale.involvering", "Ja"),
        ("choose", "samtale.atferd-rad", "Ja"),
        ("choose", "innsyn.skjul", "Nei"),
        ("choose", "trygg-kontakt.trygge", "Ved oppmøte hos tjenesten"),
        ("choose", "trygg-kontakt.utrygge", "Brev (papir eller digital postkasse)"),
        ("type", "trygg-kontakt.tidspunkt", "Hverdager 09–14"),
        *(("choose", f"plan.sjekkliste.{key}", "Ja") for key in GUIDANCE_KEYS),
        ("type", "plan.avtalte-tiltak", "Ringe krisesenteret sammen neste uke"),
        ("choose", "sarbare.barn", "Nei"),
        ("choose", "sarbare.barn-utover", "Nei"),
        ("choose", "sarbare.andre", "Nei"),
        ("choose", "psykisk.funksjonsnedsettelse", "Nei"),
        ("choose", "risiko.utfort", "Nei"),
    )
]


def require_browser() -> str:
    """Path of Debian's chromium, after checking Node and the npm driver are there (fail under CI)."""
    chromium = shutil.which("chromium")
    missing = [
        what
        for what, ok in (
            ("chromium (apt-get install chromium)", chromium),
            ("node", shutil.which("node")),
            (
                "playwright-core (npm ci in tools/form-preview)",
                (TOOLS / "node_modules" / "playwright-core").is_dir(),
            ),
            ("lforms (npm ci in tools/form-preview)", (TOOLS / "node_modules" / "lforms").is_dir()),
        )
        if not ok
    ]
    if missing:
        unavailable("the browser test", f"needs {', '.join(missing)}; scripts/setup.sh installs them")
    assert chromium
    return chromium


@contextmanager
def serving(args: Sequence[str], log: Path, env: Mapping[str, str] | None = None) -> Iterator[str]:
    """Run ``safetyplan ARGS`` (preview or serve, with ``--port``) until its page answers; yield what it
    wrote to stderr by then (the preview prints its address there). Stopped afterwards."""
    port = args[list(args).index("--port") + 1]
    url = f"http://127.0.0.1:{port}/form/config"
    with answering([str(SAFETYPLAN), *args], url, log, env={**os.environ, **(env or {})}):
        yield log.read_text()


def preview_url(stderr_line: str) -> str:
    """The address ``safetyplan preview`` printed (with its one-time token in the fragment)."""
    found = re.search(r"http://127\.0\.0\.1:\d+/form\S*", stderr_line)
    assert found, stderr_line
    return found.group(0)


def drive(
    url: str,
    steps: Sequence[Mapping[str, Any]],
    work: Path,
    *,
    first_check: bool = False,
    check: bool = True,
    deliver: bool = False,
    screenshots: Path | None = None,
) -> dict[str, Any]:
    """Open ``url`` in headless chromium, (check once,) do ``steps``, (check); what the page showed."""
    chromium = require_browser()
    scenario = work / f"scenario-{time.monotonic_ns()}.json"
    scenario.write_text(
        json.dumps(
            {
                "url": url,
                "chromium": chromium,
                "screenshots": str(screenshots) if screenshots else None,
                "firstCheck": first_check,
                "check": check,
                "deliver": deliver,
                "steps": list(steps),
            }
        )
    )
    report: dict[str, Any] = json.loads(run_node(DRIVER, str(scenario), cwd=TOOLS))
    return report
