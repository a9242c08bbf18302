"""R4 primitive formats and answer value[x] shapes: what a value of each kind must look like.

Shared by response checking and the Questionnaire index; nothing here knows a particular Questionnaire.
"""

from __future__ import annotations

import json
import math
import re
from datetime import date
from typing import Any

ITEM_TYPES = frozenset(
    {
        "group",
        "display",
        "boolean",
        "decimal",
        "integer",
        "date",
        "dateTime",
        "time",
        "string",
        "text",
        "url",
        "choice",
        "open-choice",
        "attachment",
        "reference",
        "quantity",
    }
)

#: The answer value[x] each R4 item type allows (as the HL7 validator's ``QuestionnaireValidator`` checks it).
ALLOWED_ANSWER_TYPES: dict[str, frozenset[str]] = {
    "boolean": frozenset({"Boolean"}),
    "decimal": frozenset({"Decimal"}),
    "integer": frozenset({"Integer"}),
    "date": frozenset({"Date"}),
    "dateTime": frozenset({"DateTime"}),
    "time": frozenset({"Time"}),
    "string": frozenset({"String"}),
    "text": frozenset({"String"}),
    "url": frozenset({"Uri"}),
    "attachment": frozenset({"Attachment"}),
    "reference": frozenset({"Reference"}),
    "quantity": frozenset({"Quantity"}),
    "choice": frozenset({"Coding", "Date", "Time", "Integer", "String"}),
    "open-choice": frozenset({"Coding", "Date", "Time", "Integer", "String"}),
}

#: The value types an enableWhen can compare with (R4 ``answer[x]``); answers may also be Uri or Attachment.
_COMPARABLE = (
    "Boolean",
    "Decimal",
    "Integer",
    "Date",
    "DateTime",
    "Time",
    "String",
    "Coding",
    "Quantity",
    "Reference",
)
ENABLE_WHEN_KEYS: dict[str, str] = {f"answer{t}": t for t in _COMPARABLE}
#: R4 ``answer.value[x]``, in the order the spec lists them.
VALUE_KEYS: dict[str, str] = {
    f"value{t}": t for t in (*_COMPARABLE[:7], "Uri", "Attachment", *_COMPARABLE[7:])
}
OPERATORS = frozenset({"exists", "=", "!=", ">", "<", ">=", "<="})

# R4 primitive formats (simplified from the spec's regexes; full dates are also checked against the calendar).
DATE_RE = re.compile(r"\d{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?)?")
DATETIME_RE = re.compile(
    r"\d{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01])"
    r"(T([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?(Z|[+-]((0\d|1[0-3]):[0-5]\d|14:00)))?)?)?"
)
TIME_RE = re.compile(r"([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?")

INT32 = (-(2**31), 2**31 - 1)
#: Deeper item nesting is refused: no real form needs it, and hostile input must not exhaust the stack.
MAX_DEPTH = 50


def as_list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


def quote(v: Any, limit: int = 60) -> str:
    """A short, escaped rendering of a code or linkId for a message (never used for free text)."""
    s = v if isinstance(v, str) else repr(v)
    if len(s) > limit:
        s = s[:limit] + "…"
    return json.dumps(s, ensure_ascii=False)


def value_key(kind: str, value: Any) -> tuple[Any, ...] | None:
    """A hashable identity for an answer / option value: Codings by system + code (display ignored)."""
    key: tuple[Any, ...]
    if kind == "Coding":
        if not isinstance(value, dict):
            return None
        key = ("Coding", value.get("system") or "", value.get("code"))
    elif kind == "Reference":
        if not isinstance(value, dict):
            return None
        key = ("Reference", value.get("reference"))
    elif kind in ("Quantity", "Attachment"):
        return None
    elif kind == "Decimal" and isinstance(value, (int, float)) and not isinstance(value, bool):
        key = ("Decimal", float(value))
    else:
        key = (kind, value)
    try:
        hash(key)
    except TypeError:  # malformed content (a list where a code should be): it matches nothing
        return None
    return key


def value_format_problem(kind: str, value: Any) -> str | None:
    """Why ``value`` is not a valid R4 ``value[kind]`` (None when it is)."""
    if kind == "Boolean":
        return None if isinstance(value, bool) else "must be true or false"
    if kind == "Integer":
        if isinstance(value, bool) or not isinstance(value, int):
            return "must be a whole number"
        return None if INT32[0] <= value <= INT32[1] else "is outside the 32-bit integer range"
    if kind == "Decimal":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return "must be a number"
        return None if math.isfinite(value) else "must be a finite number"
    if kind in ("String", "Uri"):
        if not isinstance(value, str):
            return "must be a string"
        if not value:
            return "must not be empty (leave the answer out instead)"
        if kind == "Uri" and any(ch.isspace() for ch in value):
            return "must not contain whitespace"
        return None
    if kind in ("Date", "DateTime"):
        if not isinstance(value, str) or not (DATE_RE if kind == "Date" else DATETIME_RE).fullmatch(value):
            return "must be an ISO date (YYYY, YYYY-MM or YYYY-MM-DD)" + (
                "" if kind == "Date" else ", or a date-time with a time zone (YYYY-MM-DDThh:mm:ss+01:00)"
            )
        if len(value) >= 10:
            try:
                date(int(value[0:4]), int(value[5:7]), int(value[8:10]))
            except ValueError:
                return "is not a date in the calendar"
        return None
    if kind == "Time":
        return None if isinstance(value, str) and TIME_RE.fullmatch(value) else "must be a time hh:mm:ss"
    if kind == "Coding":
        if not isinstance(value, dict):
            return "must be a Coding object"
        for k in ("system", "code", "display", "version"):
            if k in value and not isinstance(value[k], str):
                return f"has a {k} that is not a string"
        return None if value.get("code") or value.get("system") else "needs a system and a code"
    if kind == "Quantity":
        if not isinstance(value, dict):
            return "must be a Quantity object"
        v = value.get("value")
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
            return "has a value that is not a number"
        return None
    if kind in ("Reference", "Attachment"):
        return None if isinstance(value, dict) else f"must be a {kind} object"
    return None
