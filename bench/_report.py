"""What the benchmarks share when they write ``bench/results/*.md``: markdown tables and the tally of statuses."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence


def row(cells: Iterable[object]) -> str:
    """One markdown table row of already formatted cells."""
    return "| " + " | ".join(str(c) for c in cells) + " |"


def table(header: str | Sequence[str], rows: Iterable[Iterable[object]]) -> list[str]:
    """A markdown table: the header (its cells, or one string of them separated by ``" | "``), its rule (one
    ``---`` a column) and one line a row."""
    cells = header.split(" | ") if isinstance(header, str) else header
    return [row(cells), "|" + "---|" * len(cells), *(row(r) for r in rows)]


def tally(counts: Mapping[object, int]) -> str:
    """How often each answer came back, in the order given: ``201×148, 503×2``."""
    return ", ".join(f"{k}×{v}" for k, v in counts.items())
