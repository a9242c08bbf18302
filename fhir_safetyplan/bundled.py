"""Where the files the commands need beyond the code are: the HAPI launcher's Maven sources, the examples
``safetyplan demo`` delivers, and LHC-Forms for ``safetyplan preview``.

An installed wheel carries them as package data in ``fhir_safetyplan/_bundled/`` (``setup.py`` puts them
there). A clone has no ``_bundled/`` and uses the repository's own ``hapi/``, ``examples/`` and
``tools/form-preview/node_modules/lforms``, as before. The launcher is never built inside site-packages:
the wheel's sources are copied into a per-user cache directory (``$XDG_CACHE_HOME/fhir-safetyplan``,
default ``~/.cache/fhir-safetyplan``) and Maven builds them there.

Standard library only: the CLI imports this module through :mod:`fhir_safetyplan.local_hapi`.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from fhir_safetyplan import __version__

PACKAGE = Path(__file__).resolve().parent
#: package data of an installed wheel
BUNDLED = PACKAGE / "_bundled"
#: where ``npm ci`` (scripts/setup.sh) puts LHC-Forms in a clone
CLONE_LFORMS = Path("tools") / "form-preview" / "node_modules" / "lforms" / "dist" / "lforms"


def clone_root() -> Path | None:
    """The repository this package runs from (an editable install in a clone), or None when installed."""
    if BUNDLED.is_dir():
        return None
    root = PACKAGE.parent
    if (root / "pyproject.toml").is_file() and (root / "hapi" / "pom.xml").is_file():
        return root
    return None


def cache_dir(env: Mapping[str, str]) -> Path:
    """The per-user cache: ``XDG_CACHE_HOME/fhir-safetyplan`` of ``env`` (an absolute path), else ``~/.cache/…``.

    ``env`` is the configuration the caller read (the command line's settings pass the environment)."""
    configured = env.get("XDG_CACHE_HOME", "")
    base = Path(configured) if configured and Path(configured).is_absolute() else Path.home() / ".cache"
    return base / "fhir-safetyplan"


def examples_root() -> Path | None:
    """The folder of example folders ``demo`` can deliver, or None if this installation has none."""
    for candidate in (BUNDLED / "examples", (clone_root() or BUNDLED) / "examples"):
        if candidate.is_dir():
            return candidate
    return None


def lforms_root() -> Path | None:
    """The folder holding LHC-Forms' ``webcomponent/`` and ``fhir/R4/`` builds, or None if not installed."""
    root = clone_root()
    for candidate in (BUNDLED / "lforms", root / CLONE_LFORMS if root else None):
        if candidate is not None and (candidate / "webcomponent" / "main.js").is_file():
            return candidate
    return None


def _sources_digest(sources: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in sources.rglob("*") if p.is_file()):
        digest.update(path.relative_to(sources).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def hapi_project(cache: Path | None = None) -> Path | None:
    """The Maven project of the launcher to build and run, or None if this installation has no sources.

    A clone builds its own ``hapi/`` in place. A wheel's sources are copied once per version and content
    into ``cache`` (default: :func:`cache_dir` of no configuration; a new wheel gets a fresh copy, so an
    upgrade never runs a stale jar).
    """
    root = clone_root()
    if root is not None:
        return root / "hapi"
    sources = BUNDLED / "hapi"
    if not (sources / "pom.xml").is_file():
        return None
    project = (cache or cache_dir({})) / f"hapi-{__version__}-{_sources_digest(sources)}"
    if not (project / "pom.xml").is_file():
        project.parent.mkdir(parents=True, exist_ok=True)
        # Copy beside, then rename: a concurrent first use sees the whole tree or none of it.
        staging = Path(tempfile.mkdtemp(prefix=".hapi-", dir=project.parent))
        try:
            shutil.copytree(sources, staging / "hapi")
            with contextlib.suppress(OSError):  # another process renamed its copy first: use that one
                (staging / "hapi").rename(project)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return project
