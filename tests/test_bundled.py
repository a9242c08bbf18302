"""Where the commands find the launcher sources, the examples and LHC-Forms: in a clone, its own folders; in an
installed wheel, the package data, with the launcher copied into the per-user cache to be built there.

An installed wheel is imitated by pointing ``bundled.BUNDLED`` at a folder laid out as the build makes it;
``tests/integration/test_wheel.py`` checks the real wheel.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fhir_safetyplan import __version__, bundled, local_hapi
from fhir_safetyplan.commands.demo import find_example
from fhir_safetyplan.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def wheel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A package-data folder as an installed wheel has it: hapi sources, one example, LHC-Forms."""
    data = tmp_path / "_bundled"
    (data / "hapi" / "src" / "main").mkdir(parents=True)
    (data / "hapi" / "pom.xml").write_text("<project/>")
    (data / "hapi" / "src" / "main" / "Launcher.java").write_text("class Launcher {}")
    (data / "examples" / "01-alt-pa-plass").mkdir(parents=True)
    (data / "examples" / "01-alt-pa-plass" / "answers.json").write_text("{}")
    (data / "lforms" / "webcomponent").mkdir(parents=True)
    (data / "lforms" / "webcomponent" / "main.js").write_text("// lforms")
    monkeypatch.setattr(bundled, "BUNDLED", data)
    monkeypatch.delenv("SAFETYPLAN_HAPI_DIR", raising=False)
    return data


def test_in_a_clone_the_repositorys_own_folders_are_used() -> None:
    assert bundled.clone_root() == REPO
    assert bundled.hapi_project() == REPO / "hapi"
    assert bundled.examples_root() == REPO / "examples"
    assert find_example("01").parent.parent == REPO / "examples"


def test_installed_the_launcher_sources_are_copied_into_the_cache_and_built_there(
    wheel: Path, tmp_path: Path
) -> None:
    cache = bundled.cache_dir({"XDG_CACHE_HOME": str(tmp_path / "cache")})
    project = bundled.hapi_project(cache)
    assert project is not None and project.parent == tmp_path / "cache" / "fhir-safetyplan"
    assert project.name.startswith(f"hapi-{__version__}-")
    assert (project / "pom.xml").read_text() == "<project/>"
    assert (project / "src" / "main" / "Launcher.java").is_file()
    assert bundled.hapi_project(cache) == project  # copied once
    assert [p.name for p in project.parent.iterdir()] == [project.name]  # no staging left behind
    assert local_hapi.jar_path(project) == project / "target" / local_hapi.JAR_NAME
    assert bundled.clone_root() is None  # never the folder around site-packages


def test_installed_new_sources_get_a_fresh_copy_so_an_upgrade_never_runs_a_stale_jar(
    wheel: Path, tmp_path: Path
) -> None:
    cache = bundled.cache_dir({"XDG_CACHE_HOME": str(tmp_path / "cache")})
    first = bundled.hapi_project(cache)
    (wheel / "hapi" / "pom.xml").write_text("<project><version>2</version></project>")
    second = bundled.hapi_project(cache)
    assert first != second and second is not None
    assert (second / "pom.xml").read_text().endswith("</project>") and "2" in (second / "pom.xml").read_text()


def test_installed_examples_and_lhc_forms_come_from_the_package(wheel: Path) -> None:
    assert bundled.examples_root() == wheel / "examples"
    assert find_example("01") == wheel / "examples" / "01-alt-pa-plass" / "answers.json"
    assert bundled.lforms_root() == wheel / "lforms"


def test_installed_without_launcher_sources_the_error_says_what_to_do(wheel: Path) -> None:
    shutil.rmtree(wheel / "hapi")
    assert bundled.hapi_project() is None
    with pytest.raises(ConfigError, match="complete wheel or a clone"):
        local_hapi.hapi_dir()


def test_the_cache_is_xdg_cache_home_when_absolute_else_the_home_cache() -> None:
    assert bundled.cache_dir({"XDG_CACHE_HOME": "/var/cache/u"}) == Path("/var/cache/u/fhir-safetyplan")
    home = Path.home() / ".cache" / "fhir-safetyplan"
    assert (
        bundled.cache_dir({"XDG_CACHE_HOME": "relative/dir"}) == home
    )  # the XDG spec ignores relative paths
    assert bundled.cache_dir({}) == home
