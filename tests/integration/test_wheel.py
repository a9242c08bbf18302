"""Installed like a library: the wheel that ``python -m build`` makes carries everything the commands need.

The wheel is installed in a fresh virtual environment outside the clone, and the commands run from an empty
temporary directory with a clean environment, so nothing of the clone can be reached at run time. The local
HAPI FHIR launcher is built by Maven on first use into the per-user cache (``XDG_CACHE_HOME`` pointed at a
temporary directory), never into site-packages.

Slow by nature (a build, an install, a Maven build and a server start: about 2–4 minutes on 2 cores); pip's
cache and ``~/.m2`` are reused. Under ``CI`` it never skips.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from _needs import unavailable
from _processes import answering

from fhir_safetyplan import local_hapi

REPO = Path(__file__).resolve().parents[2]


def _tools_or_skip() -> None:
    missing = [tool for tool in ("java", "mvn") if shutil.which(tool) is None]
    if missing:
        unavailable("the installed-wheel test", f"needs {', '.join(missing)}")


class Installed:
    """A virtual environment with the built wheel installed, and a clean environment to run it in."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.bin = root / "venv" / "bin"
        self.run_dir = root / "run"
        self.cache = root / "cache"
        self.run_dir.mkdir()
        self.env = {
            "PATH": f"{self.bin}{os.pathsep}{_system_path()}",
            "HOME": os.environ.get("HOME", str(root)),
            "XDG_CACHE_HOME": str(self.cache),
            "LANG": "C.UTF-8",
        }
        for name in ("JAVA_HOME", "MAVEN_OPTS", "PIP_INDEX_URL", "PIP_CACHE_DIR"):
            if name in os.environ:
                self.env[name] = os.environ[name]

    def run(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            cwd=self.run_dir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )


def _system_path() -> str:
    """PATH without the clone's virtual environment."""
    venv_bin = str(Path(sys.executable).parent)
    return os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p != venv_bin)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    _tools_or_skip()
    root = tmp_path_factory.mktemp("wheel")
    dist = root / "dist"
    started = time.monotonic()
    built = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(dist), str(REPO)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    wheels = list(dist.glob("fhir_safetyplan-*.whl"))
    assert len(wheels) == 1 and list(dist.glob("fhir_safetyplan-*.tar.gz")), sorted(dist.iterdir())
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True, timeout=300)
    where = Installed(root)
    pip = where.run(
        "python", "-m", "pip", "install", "--disable-pip-version-check", "-q", f"{wheels[0]}[serve]"
    )
    assert pip.returncode == 0, pip.stdout[-3000:] + pip.stderr[-3000:]
    sys.stderr.write(f"\n[wheel built and installed in {time.monotonic() - started:.0f} s]\n")
    yield where


def test_the_installed_package_is_the_wheel_not_the_clone(installed: Installed) -> None:
    found = installed.run("python", "-c", "import fhir_safetyplan, sys; print(fhir_safetyplan.__file__)")
    assert found.returncode == 0, found.stderr
    location = Path(found.stdout.strip())
    assert installed.root in location.parents and REPO not in location.parents


def test_the_installed_questionnaire_command_prints_the_form(installed: Installed) -> None:
    result = installed.run("safetyplan", "questionnaire", "--lang", "nb")
    assert result.returncode == 0, result.stderr
    questionnaire = json.loads(result.stdout)
    assert questionnaire["resourceType"] == "Questionnaire" and questionnaire["language"] == "nb"
    assert questionnaire["url"].endswith("/Questionnaire/sikkerhetsplan-nb")


def test_the_installed_demo_builds_the_launcher_in_the_cache_and_delivers_a_plan(
    installed: Installed,
) -> None:
    started = time.monotonic()
    result = installed.run("safetyplan", "demo", "--state-dir", str(installed.root / "state"), timeout=1500)
    assert result.returncode == 0, result.stderr[-4000:]
    assert result.stdout.startswith("Sikkerhetsplan – 2026-11-20")
    assert "read back 5 resources" in result.stderr and "Traceback" not in result.stderr
    jars = list((installed.cache / "fhir-safetyplan").glob(f"hapi-*/target/{local_hapi.JAR_NAME}"))
    assert len(jars) == 1, "the launcher is built in the per-user cache directory"
    site = installed.root / "venv" / "lib"
    assert not list(site.rglob(local_hapi.JAR_NAME)), "nothing is built inside site-packages"
    assert not list(installed.run_dir.iterdir()), "nothing is written to the working directory"
    sys.stderr.write(
        f"\n[installed demo incl. Maven build and server start: {time.monotonic() - started:.0f} s]\n"
    )


@contextmanager
def _serving(installed: Installed, args: list[str], path: str) -> Iterator[str]:
    """``safetyplan ARGS --port P`` of the installed wheel, run from its empty directory, until ``path``
    answers; its base URL. Stopped afterwards."""
    port = local_hapi.free_port()
    base = f"http://127.0.0.1:{port}"
    with answering(
        [str(installed.bin / "safetyplan"), *args, "--port", str(port)],
        base + path,
        installed.root / f"{args[0]}.log",
        cwd=installed.run_dir,
        env=installed.env,
    ):
        yield base


def test_the_installed_service_answers_metadata(installed: Installed) -> None:
    with _serving(installed, ["serve"], "/metadata") as base:
        response = requests.get(f"{base}/metadata", timeout=10)
        assert response.status_code == 200
        assert response.json()["resourceType"] == "CapabilityStatement"


def test_the_installed_preview_serves_the_page_and_lhc_forms_from_the_wheel(installed: Installed) -> None:
    with _serving(installed, ["preview"], "/form/config") as base:
        assert requests.get(f"{base}/form/config", timeout=10).json()["renderer"] is True
        page = requests.get(f"{base}/form", timeout=10)
        assert page.status_code == 200 and "/form/static/form.js" in page.text
        for path in (
            "/form/static/form.js",
            "/form/lforms/webcomponent/main.js",
            "/form/lforms/fhir/R4/lformsFHIR.min.js",
        ):
            assert requests.get(base + path, timeout=30).status_code == 200, path
