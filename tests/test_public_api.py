"""The public API: what ``fhir_safetyplan.__all__`` names is importable from the package root, documented, the
very object of its home module, and loaded only when asked for (``import fhir_safetyplan`` stays cheap)."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import fhir_safetyplan

ROOT_INIT = Path(fhir_safetyplan.__file__)


def _type_checking_imports() -> dict[str, tuple[str, str]]:
    """name -> (module, attribute) of the imports under ``if TYPE_CHECKING:`` in the package's ``__init__``."""
    tree = ast.parse(ROOT_INIT.read_text(encoding="utf-8"))
    found: dict[str, tuple[str, str]] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for stmt in node.body:
                if isinstance(stmt, ast.ImportFrom):
                    for alias in stmt.names:
                        found[alias.asname or alias.name] = (str(stmt.module), alias.name)
    return found


@pytest.mark.parametrize("name", fhir_safetyplan.__all__)
def test_every_public_name_imports_from_the_root_and_has_its_own_docstring(name: str) -> None:
    namespace: dict[str, object] = {}
    exec(f"from fhir_safetyplan import {name}", namespace)  # the way a user writes it
    obj = namespace[name]
    doc = getattr(obj, "__doc__", None)
    assert isinstance(doc, str) and doc.strip(), f"{name} has no docstring"
    # a dataclass without a docstring gets its signature as __doc__: that is not documentation
    assert not doc.startswith(f"{getattr(obj, '__name__', name)}("), f"{name} has only a generated docstring"


def test_dir_lists_every_public_name() -> None:
    assert set(fhir_safetyplan.__all__) <= set(dir(fhir_safetyplan))
    assert "__version__" in dir(fhir_safetyplan)


def test_all_is_sorted_unique_and_names_exactly_the_lazy_table() -> None:
    names = fhir_safetyplan.__all__
    assert names == sorted(names)
    assert len(names) == len(set(names))
    assert set(names) == set(fhir_safetyplan._PUBLIC)


def test_type_checkers_see_the_same_objects_the_root_hands_out() -> None:
    """The TYPE_CHECKING imports (what mypy and IDEs read) and the lazy table (what runs) name the same things."""
    assert _type_checking_imports() == fhir_safetyplan._PUBLIC
    for name, (module, attribute) in fhir_safetyplan._PUBLIC.items():
        assert getattr(fhir_safetyplan, name) is getattr(importlib.import_module(module), attribute), name


def test_no_public_name_is_also_a_submodule_so_importing_one_never_shadows_it() -> None:
    """Importing ``fhir_safetyplan.extract`` sets the package attribute ``extract`` to the module; a public
    function of that name would be replaced by it. That is why the root says ``extract_bundle``."""
    submodules = {m.name for m in pkgutil.iter_modules(fhir_safetyplan.__path__)}
    assert not set(fhir_safetyplan.__all__) & submodules


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'build_bundel'"):
        fhir_safetyplan.build_bundel  # noqa: B018  # type: ignore[attr-defined]
    with pytest.raises(ImportError):
        exec("from fhir_safetyplan import build_bundel", {})


def test_importing_the_package_loads_none_of_its_modules_nor_a_heavy_dependency() -> None:
    code = (
        "import sys, fhir_safetyplan\n"
        "heavy = ('fhir_safetyplan.', 'requests', 'pydantic', 'fhirpathpy', 'fhir.', 'fastapi', 'uvicorn')\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith(heavy))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == []


def test_the_version_is_looked_up_on_first_use() -> None:
    code = "import fhir_safetyplan\nprint(fhir_safetyplan.__version__)\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() and out.strip()[0].isdigit()


def test_the_command_line_help_loads_no_stage_and_no_heavy_dependency() -> None:
    """``safetyplan --help`` imports every command module: they import only what the help needs, so it stays
    fast (the stages and their libraries are imported by the handlers that run them)."""
    code = (
        "import contextlib, io, sys\n"
        "from fhir_safetyplan import cli\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    cli.main(['--help'])\n"
        "heavy = ('requests', 'pydantic', 'fhirpathpy', 'fhir.', 'fastapi', 'uvicorn', 'sqlite3', 'importlib.metadata',\n"
        "         'fhir_safetyplan.pipeline', 'fhir_safetyplan.document', 'fhir_safetyplan.questionnaire',\n"
        "         'fhir_safetyplan.delivery.deliver', 'fhir_safetyplan.delivery.outbox',\n"
        "         'fhir_safetyplan.delivery.store', 'fhir_safetyplan.client', 'fhir_safetyplan.service')\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith(heavy))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == []
