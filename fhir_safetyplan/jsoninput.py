"""Parsing an input's JSON, once, for the command line, the HTTP service and library callers.

Stricter than :func:`json.loads`, because what we document must be what every other parser of the same bytes
sees:

- **duplicate keys** are refused (``{"patient": A, "patient": B}``: Python keeps the last, other engines the
  first, so they would see another patient than the one we document);
- **lone UTF-16 surrogates** (``"\\ud800"``) are refused anywhere, in keys and values: they cannot be encoded as
  UTF-8, so nothing downstream (ids, the journal, the server) could store them;
- **numbers** JSON does not have (``NaN``, ``Infinity``) and integers too long to convert (Python refuses more
  than 4,300 digits) are refused, naming the line;
- inputs over :data:`MAX_INPUT_BYTES`, text that is not UTF-8, and nesting too deep to be a plan.

Every refusal is an :class:`~fhir_safetyplan.errors.InputError` carrying an OperationOutcome that says what is
wrong and where (a line and column, or the path of the element). Messages never quote values: they may be
identity numbers or free text.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import Any

from fhir_safetyplan.errors import JSON, InputError, issue, operation_outcome

#: Inputs larger than this are refused before parsing (a plan is a few kB; this stops hostile payloads).
MAX_INPUT_BYTES = 1_000_000
#: At most this many duplicate keys or lone surrogates are listed (hostile input could have thousands).
MAX_ISSUES = 20
#: Longer integer literals are refused (a FHIR integer has at most 10 digits; Python's own limit is 4,300).
MAX_INTEGER_DIGITS = 1_000

_SURROGATE = re.compile("[\ud800-\udfff]")
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")
#: Keys shown in messages as they are; any other key (it could hold an identity number) is not quoted.
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,63}")


class _Refused(Exception):
    """Raised inside the decoder's hooks; turned into an InputError by :func:`parse_json`."""

    def __init__(self, what: str, literal: str = "") -> None:
        super().__init__(what)
        self.what = what
        self.literal = literal


def _refuse(source: str, message: str, code: str = "structure") -> InputError:
    text = f"{source} {message}"
    return InputError(text, operation_outcome([issue("error", code, text)]))


def _parse_int(literal: str) -> int:
    digits = len(literal.lstrip("-"))
    if digits > MAX_INTEGER_DIGITS:
        raise _Refused(
            f"has an integer of {digits} digits{{where}}; at most {MAX_INTEGER_DIGITS} are accepted and no value "
            "of a plan is that long — check what the sending program wrote there",
            literal,
        )
    return int(literal)


def _parse_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise _Refused(
            "has a number too large to represent{where}; no value of a plan is that large — check what the "
            "sending program wrote there",
            literal,
        )
    return value


def _parse_constant(name: str) -> Any:
    raise _Refused(f"contains {name}, which is not a JSON number; send a number or leave the element out")


class _Object(dict[str, Any]):
    """A JSON object that was given some keys more than once (located after parsing, to name its path)."""

    __slots__ = ("duplicates",)

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        super().__init__(pairs)
        seen: set[str] = set()
        repeated: dict[str, None] = {}  # an ordered set: hostile input may repeat thousands of keys
        for key, _ in pairs:
            if key in seen:
                repeated[key] = None
            seen.add(key)
        self.duplicates = list(repeated)


class _Pairs:
    """The decoder's object hook for one parse: a plain dict, or an :class:`_Object` when a key repeats."""

    def __init__(self) -> None:
        self.duplicated = False

    def __call__(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(pairs)
        if len(obj) == len(pairs):
            return obj
        self.duplicated = True
        return _Object(pairs)


def _line_col(text: str, literal: str) -> str:
    found = re.search(rf"(?<![0-9.]){re.escape(literal)}(?![0-9])", text)
    if found is None:
        return ""
    at = found.start()
    line = text.count("\n", 0, at) + 1
    return f" at line {line} column {at - (text.rfind(chr(10), 0, at) + 1) + 1}"


def _key(key: str) -> str:
    return f".{key}" if _PLAIN_KEY.fullmatch(key) else ".<key>"


def _walk(node: Any, path: str, depth: int = 0) -> Iterator[tuple[str, Any, bool]]:
    """(path, node, is a key) for every value below ``node`` and every key (as a string)."""
    yield path, node, False
    if depth > 200:
        return
    if isinstance(node, dict):
        for k, v in node.items():
            yield f"{path}{_key(k)}", k, True
            yield from _walk(v, f"{path}{_key(k)}", depth + 1)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, f"{path}[{i}]", depth + 1)


def _root(data: Any) -> str:
    rtype = data.get("resourceType") if isinstance(data, dict) else None
    return rtype if isinstance(rtype, str) and _PLAIN_KEY.fullmatch(rtype) else ""


def _where(path: str) -> str:
    return path.lstrip(".") or "the top level"


def lone_surrogate_issues(data: Any, source: str = "input") -> list[JSON]:
    """One issue per string (key or value) in ``data`` holding a lone UTF-16 surrogate (at most
    :data:`MAX_ISSUES`)."""
    try:  # the fast path for the usual input with none: serialising and encoding is done in C
        json.dumps(data, ensure_ascii=False, check_circular=False).encode("utf-8")
        return []
    except UnicodeEncodeError:
        pass
    except (TypeError, ValueError, RecursionError):
        pass  # not plain JSON data (a library caller's own objects): look at every string below
    out: list[JSON] = []
    for path, node, is_key in _walk(data, _root(data)):
        if isinstance(node, str) and _SURROGATE.search(node):
            what = "the key" if is_key else "the text"
            out.append(
                issue(
                    "error",
                    "value",
                    f"{source}: {what} at {_where(path)} contains a lone UTF-16 surrogate (an escape such as \\ud800 "
                    "without its pair), which is not a character and cannot be stored; the sending program "
                    "cut a character in half — send the text again as UTF-8",
                    path.lstrip(".") or None,
                )
            )
            if len(out) >= MAX_ISSUES:
                break
    return out


def _duplicate_issues(data: Any, source: str) -> list[JSON]:
    out: list[JSON] = []
    for path, node, _ in _walk(data, _root(data)):
        if len(out) >= MAX_ISSUES:
            break
        if isinstance(node, _Object):
            for key in node.duplicates[: MAX_ISSUES - len(out)]:
                where = f"{path}{_key(key)}"
                shown = f'the key "{key}"' if _PLAIN_KEY.fullmatch(key) else "a key"
                out.append(
                    issue(
                        "error",
                        "structure",
                        f"{source}: {shown} appears more than once in the same object (at {_where(where)}); "
                        "JSON parsers disagree on which one counts, so another program could read another "
                        "value (even another patient) than the one we would document — send each key once",
                        _where(where),
                    )
                )
    return out


def _decode(text: str | bytes, source: str) -> str:
    if len(text) > MAX_INPUT_BYTES:
        raise _refuse(
            source,
            f"is {len(text)} bytes; the limit is {MAX_INPUT_BYTES}. Send one plan at a time.",
            code="too-costly",
        )
    if isinstance(text, str):
        return text
    try:
        return text.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _refuse(source, f"is not valid UTF-8 (byte {exc.start}); save it as UTF-8") from None


def parse_json(text: str | bytes, source: str = "input") -> Any:
    """Parse one input's JSON text (see the module docstring for what is refused); InputError when refused."""
    text = _decode(text, source)
    hook = _Pairs()
    try:
        data = json.loads(
            text,
            object_pairs_hook=hook,
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_parse_constant,
        )
    except RecursionError:
        raise _refuse(source, "nests arrays or objects too deeply to be a plan", code="too-costly") from None
    except _Refused as exc:
        raise _refuse(source, exc.what.replace("{where}", _line_col(text, exc.literal))) from None
    except json.JSONDecodeError as exc:
        raise _refuse(
            source, f"is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    problems = _duplicate_issues(data, source) if hook.duplicated else []
    if _ESCAPED_SURROGATE.search(text) or _SURROGATE.search(text):
        problems += lone_surrogate_issues(data, source)
    if problems:
        raise InputError(f"{source} cannot be read as one plan", operation_outcome(problems))
    return data
