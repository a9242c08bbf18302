"""How an enableWhen condition compares with an answer (R4 semantics; see :mod:`.response` for the choices)."""

from __future__ import annotations

from typing import Any

from fhir_safetyplan.validation.index import Cond


def _num(kind: str, v: Any) -> float | None:
    if kind in ("Integer", "Decimal") and isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    return None


def answer_equals(c: Cond, kind: str, v: Any) -> bool:
    if c.kind is None:
        return False
    if c.kind in ("Integer", "Decimal"):
        a, b = _num(c.kind, c.value), _num(kind, v)
        return a is not None and a == b
    if c.kind != kind:
        return False
    if kind == "Coding":
        if not isinstance(c.value, dict) or not isinstance(v, dict):
            return False
        if c.value.get("code") != v.get("code"):
            return False
        return not c.value.get("system") or c.value.get("system") == v.get("system")
    if kind == "Quantity":
        return _quantity_order(c.value, v) == 0
    if kind == "Reference":
        return (
            isinstance(c.value, dict)
            and isinstance(v, dict)
            and c.value.get("reference") == v.get("reference")
        )
    return bool(c.value == v and type(c.value) is type(v))


def _quantity_order(a: Any, b: Any) -> int | None:
    if not isinstance(a, dict) or not isinstance(b, dict):
        return None
    ua = (a.get("system"), a.get("code")) if a.get("code") else (None, a.get("unit"))
    ub = (b.get("system"), b.get("code")) if b.get("code") else (None, b.get("unit"))
    if ua != ub:
        return None
    x, y = _num("Decimal", a.get("value")), _num("Decimal", b.get("value"))
    if x is None or y is None:
        return None
    return (y > x) - (y < x)


def answer_order(c: Cond, kind: str, v: Any) -> int | None:
    """Sign of (answer - condition value), or None when they cannot be ordered."""
    if c.kind in ("Integer", "Decimal"):
        a, b = _num(c.kind, c.value), _num(kind, v)
        if a is None or b is None:
            return None
        return (b > a) - (b < a)
    if c.kind != kind:
        return None
    if kind in ("Date", "DateTime", "Time", "String"):
        if not isinstance(c.value, str) or not isinstance(v, str):
            return None
        return (v > c.value) - (v < c.value)
    if kind == "Quantity":
        return _quantity_order(c.value, v)
    return None


ORDER_OPS = {
    ">": lambda s: s > 0,
    "<": lambda s: s < 0,
    ">=": lambda s: s >= 0,
    "<=": lambda s: s <= 0,
}
