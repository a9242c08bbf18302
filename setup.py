"""Build hook: put the files the commands need beside the code, as package data of the wheel.

pyproject.toml holds the project's metadata; this file only adds one step to ``build_py``. It copies, from
the source tree (a clone or the sdist), into ``fhir_safetyplan/_bundled/`` of the build:

- ``hapi/``: the Maven sources of the local HAPI FHIR launcher (never a built jar: it is built on first use
  into a per-user cache directory, see ``fhir_safetyplan/bundled.py``);
- ``examples/*/answers.json|input.json``: the inputs ``safetyplan demo`` delivers;
- LHC-Forms' built files from ``tools/form-preview/node_modules/lforms`` (installed by ``scripts/setup.sh``),
  so ``safetyplan preview`` serves the form renderer from this machine, never from a CDN.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
LFORMS = Path("tools/form-preview/node_modules/lforms")
#: LHC-Forms files the preview page loads (see fhir_safetyplan/service/form_page/form.html), and its licence
LFORMS_FILES = (
    "LICENSE.md",
    "dist/lforms/webcomponent/styles.css",
    "dist/lforms/webcomponent/assets/lib/zone.min.js",
    "dist/lforms/webcomponent/runtime.js",
    "dist/lforms/webcomponent/polyfills.js",
    "dist/lforms/webcomponent/main.js",
    "dist/lforms/webcomponent/down_arrow_gray_10_10.png",
    "dist/lforms/webcomponent/magnifying_glass.png",
    "dist/lforms/fhir/R4/lformsFHIR.min.js",
)


def bundled_files() -> list[tuple[Path, Path]]:
    """(source, destination under _bundled/) for every file the wheel carries beyond the code."""
    pairs: list[tuple[Path, Path]] = []
    hapi = ROOT / "hapi"
    for path in [hapi / "pom.xml", hapi / "README.md", *sorted((hapi / "src").rglob("*"))]:
        if path.is_file():
            pairs.append((path, Path("hapi") / path.relative_to(hapi)))
    for folder in sorted((ROOT / "examples").iterdir()):
        for name in ("answers.json", "input.json"):
            if (folder / name).is_file():
                pairs.append((folder / name, Path("examples") / folder.name / name))
    for name in LFORMS_FILES:
        source = ROOT / LFORMS / name
        if source.is_file():
            pairs.append((source, Path("lforms") / name.removeprefix("dist/lforms/")))
    return pairs


class BuildWithBundledFiles(build_py):
    def run(self) -> None:
        super().run()
        if not (ROOT / "hapi" / "pom.xml").is_file():
            raise SystemExit("setup.py: hapi/pom.xml is missing: build from a clone or a complete sdist")
        if not (ROOT / LFORMS / "dist").is_dir():
            sys.stderr.write(
                f"setup.py: warning: {LFORMS} is missing (run scripts/setup.sh or npm ci in tools/form-preview); "
                "this wheel's 'safetyplan preview' will not find LHC-Forms\n"
            )
        target = Path(self.build_lib) / "fhir_safetyplan" / "_bundled"
        for source, relative in bundled_files():
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)


setup(cmdclass={"build_py": BuildWithBundledFiles})
