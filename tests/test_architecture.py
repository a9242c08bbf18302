"""docs/architecture.md stays true: its module table has one row for every module of the package, and no row
for a module that is gone; the README links to it."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "fhir_safetyplan"
DOC = REPO / "docs" / "architecture.md"


def modules() -> set[str]:
    """Every module of the package, as the table names it: its path under fhir_safetyplan/ without .py."""
    return {p.relative_to(PACKAGE).with_suffix("").as_posix() for p in PACKAGE.rglob("*.py")}


def table_rows() -> list[str]:
    """The first cell of each row of the "Every module" table."""
    section = DOC.read_text(encoding="utf-8").split("\n## Every module\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([^`]+)` \|", section, flags=re.M)


def test_every_module_has_one_line_in_the_architecture_table() -> None:
    rows = table_rows()
    missing = sorted(modules() - set(rows))
    assert not missing, f"add these modules to docs/architecture.md: {missing}"


def test_the_architecture_table_names_no_module_that_is_gone_and_none_twice() -> None:
    rows = table_rows()
    gone = sorted(set(rows) - modules())
    assert not gone, f"docs/architecture.md names modules that do not exist: {gone}"
    assert len(rows) == len(set(rows))


def test_every_module_line_says_what_it_does() -> None:
    section = DOC.read_text(encoding="utf-8").split("\n## Every module\n", 1)[1].split("\n## ", 1)[0]
    for line in section.splitlines():
        if line.startswith("| `"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            assert len(cells) == 2 and len(cells[1]) > 10, line


def test_the_readme_links_to_the_architecture() -> None:
    assert "](docs/architecture.md)" in (REPO / "README.md").read_text(encoding="utf-8")
