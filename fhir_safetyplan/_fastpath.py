"""A native fast path for a safe subset of FHIRPath: compiled to Python closures, same results as fhirpathpy.

Private module, used by :mod:`fhir_safetyplan._fhirpath`. fhirpathpy interprets its parse tree on every call
(``do_eval`` re-dispatches on node types, ``=`` builds parameter lists, ``where`` evaluates its condition
twice), so a template of a dozen ``item.where(linkId = '…')`` contexts costs milliseconds. This module
compiles the same parse tree (fhirpathpy's AST) once into closures over the JSON data.

The subset (anything else: :class:`Unsupported` at compile time, and the caller uses fhirpathpy):

- literals: string, number, boolean, ``{}``;
- external constants ``%name`` (``%resource``, ``%rootResource``, ``%questionnaire``, ``%context``,
  ``%ucum`` and any given variable);
- member navigation by a lower-case identifier, with FHIR collection flattening, ``_x`` primitive
  extensions and choice types resolved through the R4 model (``answer.value`` → the ``valueX`` present);
- ``where(cond)``, ``exists()``, ``exists(cond)``, ``empty()``, ``first()``, ``count()``;
- ``=``, ``!=``, ``and``, ``or``, ``+`` (strings), ``&``, parentheses.

Semantics are fhirpathpy's (2.2.4), not the specification's where they differ, because results must not
depend on which path ran: e.g. ``=`` on two collections of the same size compares their *first* items,
``where`` keeps an item when the first result of its condition is Python-truthy, ``and``/``or`` evaluate
both sides. Where fhirpathpy raises, converts types (dates, Quantities) or does something this module does
not model, the compiled closure raises :class:`Fallback` at run time and the caller re-evaluates the whole
expression with fhirpathpy, so the rare cases keep fhirpathpy's exact behaviour (including its errors).

Results are the same raw values fhirpathpy returns with ``returnRawData``: ``ResourceNode`` objects with the
same ``data`` and type ``path`` (so they can be the focus of further expressions, fast or not), and plain
Python values for literals and operators. The nodes do not carry fhirpathpy's ``propName``/``index``
bookkeeping, which no FHIRPath function reads (it only names child nodes).

``tests/test_fastpath.py`` checks all this differentially against fhirpathpy.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from fhirpathpy.engine.evaluators import boolean_literal, number_literal, string_literal
from fhirpathpy.engine.nodes import FP_Quantity, FP_Type, ResourceNode

__all__ = ["Fallback", "FastCompiled", "Unsupported", "compile_ast"]

#: ``(focus, variables) -> raw results`` (raises :class:`Fallback` when fhirpathpy must decide).
FastCompiled = Callable[[Any, Mapping[str, Any]], list[Any]]

# An evaluator: (input collection, variables incl. %context/%ucum) -> output collection.
_Eval = Callable[[list[Any], Mapping[str, Any]], list[Any]]

_UCUM = "http://unitsofmeasure.org"  # fhirpathpy's default %ucum
_PLAIN_MEMBER = re.compile(r"[a-z][A-Za-z0-9_]*\Z")  # fhirpathpy treats capitalised names as type filters
_PLAIN_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# node types whose values fhirpathpy converts: to FP_Quantity in '=', to FP_DateTime/FP_Time in '+'
_QUANTITY_PATHS = frozenset(("Quantity", "System.Quantity"))
_DATE_PATHS = frozenset(("date", "dateTime", "time"))


class Unsupported(Exception):
    """The expression is outside the fast subset (compile time)."""


class Fallback(Exception):
    """This evaluation needs fhirpathpy (run time): a case the fast path does not model."""


def compile_ast(ast: Mapping[str, Any], model: Mapping[str, Any]) -> FastCompiled:
    """Compile fhirpathpy's AST (``fhirpathpy.parser.parse(expression)``) for the R4 ``model``.

    Raises :class:`Unsupported` when any part of the expression is outside the subset.
    """
    children = ast.get("children") or []
    if len(children) != 1:
        raise Unsupported("not one expression")
    is_literal, constant = _literal_value(children[0])
    if is_literal:

        def literal(focus: Any, variables: Mapping[str, Any]) -> list[Any]:
            return [constant]  # most template values: no focus, variables or result filtering needed

        return literal
    body = _Compiler(model).expression(children[0])

    def run(focus: Any, variables: Mapping[str, Any]) -> list[Any]:
        env = {"context": focus, "ucum": _UCUM, **variables}
        if isinstance(focus, list):
            _check_collection(focus)
            root = focus
        else:
            root = [] if focus is None else [focus]
        # returnRawData drops the bare '_x' extension holders from the top-level result (fhirpathpy does)
        return [
            r
            for r in body(root, env)
            if not (isinstance(r, ResourceNode) and type(r.data) is dict and _only_extension(r.data))
        ]

    return run


def _only_extension(data: dict[str, Any]) -> bool:
    return len(data) == 1 and "extension" in data


def _check_collection(values: list[Any]) -> None:
    # fhirpathpy flattens nested lists and drops None in places this module does not: leave those to it
    for v in values:
        if v is None or isinstance(v, list):
            raise Fallback


def _unwrap(value: Any) -> Any:
    return value.data if isinstance(value, ResourceNode) else value


def _converted(value: Any, paths: frozenset[str]) -> bool:
    """True if fhirpathpy would convert ``value`` (a node of one of ``paths``) or it is FHIRPath-typed."""
    if isinstance(value, ResourceNode):
        return value.path in paths or isinstance(value.data, FP_Type)
    return isinstance(value, FP_Type)


def _plain_member(node: Mapping[str, Any]) -> str | None:
    """The key if ``node`` is a bare member name such as ``linkId`` (as a term), else None."""
    for kind in ("TermExpression", "InvocationTerm", "MemberInvocation"):
        children = node.get("children") or []
        if node.get("type") != kind or len(children) != 1:
            return None
        node = children[0]
    key = node.get("text")
    if node.get("type") != "Identifier" or not isinstance(key, str) or not _PLAIN_MEMBER.match(key):
        return None
    return key


def _count_first(value: Any, under: Any) -> tuple[int, Any]:
    """How many nodes member navigation makes of ``x`` and ``_x``, and the first one's data."""
    count, first = 0, None
    for found in (value, under):
        if isinstance(found, list):
            if found and not count:
                first = found[0]
            count += len(found)
        elif found is not None:
            if not count:
                first = found
            count += 1
    return count, first


def _literal_value(node: Mapping[str, Any]) -> tuple[bool, Any]:
    """(True, value) if ``node`` is a string, number or boolean literal (possibly in parentheses)."""
    while node.get("type") in ("TermExpression", "ParenthesizedTerm", "LiteralTerm"):
        children = node.get("children") or []
        if len(children) != 1:
            return False, None
        node = children[0]
    evaluate = _LITERALS.get(str(node.get("type")))
    if evaluate is None:
        return False, None
    (value,) = evaluate(None, None, node)  # fhirpathpy's own evaluator: the same unescaping and number types
    return True, value


_LITERALS: dict[str, Callable[[Any, Any, Mapping[str, Any]], list[Any]]] = {
    "StringLiteral": string_literal,
    "NumberLiteral": number_literal,
    "BooleanLiteral": boolean_literal,
}


def _boolean(values: list[Any]) -> bool | None:
    """A Boolean parameter of ``and``/``or``: None when empty; Fallback where fhirpathpy raises."""
    if not values:
        return None
    if len(values) > 1:
        raise Fallback
    data = _unwrap(values[0])
    if data is True or data is False:
        return bool(data)
    raise Fallback


class _Compiler:
    """Turns AST nodes into evaluators; one instance per expression."""

    def __init__(self, model: Mapping[str, Any]) -> None:
        self.elsewhere: Mapping[str, str] = model["pathsDefinedElsewhere"]
        self.choices: Mapping[str, list[str]] = model["choiceTypePaths"]
        self.types: Mapping[str, str] = model["path2Type"]

    def expression(self, node: Mapping[str, Any]) -> _Eval:
        kind = node.get("type")
        children = node.get("children") or []
        if kind in ("TermExpression", "InvocationTerm", "ParenthesizedTerm") and len(children) == 1:
            return self.expression(children[0])
        if kind == "LiteralTerm" and len(children) == 1:
            return self.literal(children[0])
        if kind == "ExternalConstantTerm" and len(children) == 1:
            return self.variable(children[0])
        if kind == "MemberInvocation":
            return self.member(node)
        if kind == "FunctionInvocation":
            return self.function(node)
        if kind == "InvocationExpression" and len(children) == 2:
            return _chain(self.expression(children[0]), self.expression(children[1]))
        op = (node.get("terminalNodeText") or [None])[0]
        if len(children) == 2:
            left, right = self.expression(children[0]), self.expression(children[1])
            if kind == "EqualityExpression" and op in ("=", "!="):
                # the common 'linkId = 'x'': one side a constant that is never empty, never converted
                for other, side in ((left, children[1]), (right, children[0])):
                    is_literal, value = _literal_value(side)
                    if is_literal:
                        return _equals_constant(other, value, negate=op == "!=")
                return _equality(left, right, negate=op == "!=")
            if kind == "AndExpression" and op == "and":
                return _logical(left, right, decisive=False)
            if kind == "OrExpression" and op == "or":
                return _logical(left, right, decisive=True)
            if kind == "AdditiveExpression" and op == "+":
                return _plus(left, right)
            if kind == "AdditiveExpression" and op == "&":
                return _amp(left, right)
        raise Unsupported(f"{kind} {op or ''}".strip())

    # -- terms -----------------------------------------------------------------------------------------------

    def literal(self, node: Mapping[str, Any]) -> _Eval:
        if node.get("type") == "NullLiteral":
            return _empty
        is_literal, value = _literal_value(node)
        if not is_literal:
            raise Unsupported(str(node.get("type")))

        def constant(coll: list[Any], env: Mapping[str, Any]) -> list[Any]:
            return [value]

        return constant

    def variable(self, node: Mapping[str, Any]) -> _Eval:
        children = node.get("children") or []
        if node.get("type") != "ExternalConstant" or len(children) != 1:
            raise Unsupported("external constant")
        ident = children[0]
        name = ident.get("text")
        if ident.get("type") != "Identifier" or not isinstance(name, str) or not _PLAIN_VARIABLE.match(name):
            raise Unsupported("delimited variable name")

        def lookup(coll: list[Any], env: Mapping[str, Any]) -> list[Any]:
            try:
                value = env[name]
            except KeyError:  # fhirpathpy raises its own error for an undefined variable
                raise Fallback from None
            if value is None:
                return []
            if isinstance(value, list):
                _check_collection(value)
                return value
            return [value]

        return lookup

    def member(self, node: Mapping[str, Any]) -> _Eval:
        children = node.get("children") or []
        key = children[0].get("text") if len(children) == 1 else None
        if not isinstance(key, str) or not _PLAIN_MEMBER.match(key):
            raise Unsupported("member name")
        steps: dict[str | None, tuple[tuple[str, str, str], ...]] = {}

        def navigate(coll: list[Any], env: Mapping[str, Any]) -> list[Any]:
            out: list[Any] = []
            for res in coll:
                if not isinstance(res, ResourceNode):
                    res = ResourceNode(res, None)  # type: ignore[no-untyped-call]
                data = res.data
                if type(data) is not dict:
                    # fhirpathpy gives FP_Quantity.value for any name and len() for 'length'
                    if isinstance(data, (Mapping, FP_Quantity)) or key == "length":
                        raise Fallback
                    continue
                path = res.path
                candidates = steps.get(path)
                if candidates is None:
                    candidates = steps[path] = self._step(path, key)
                for field, ufield, child_type in candidates:
                    value = data.get(field)
                    under = data.get(ufield)
                    if value is None and under is None:
                        continue  # choice types: try the next valueX
                    for found in (value, under):
                        if isinstance(found, list):
                            out.extend(ResourceNode(x, child_type) for x in found)  # type: ignore[no-untyped-call]
                        elif found is not None:
                            out.append(ResourceNode(found, child_type))  # type: ignore[no-untyped-call]
                    break
            return out

        return navigate

    def _step(self, path: str | None, key: str) -> tuple[tuple[str, str, str], ...]:
        """(field, _field, child type) to try, in order, for ``key`` on a node of type ``path``.

        The same lookups as fhirpathpy's ``create_reduce_member_invocation``, done once per parent type.
        """
        child = f"{path}.{key}" if path else f"_.{key}"
        child = self.elsewhere.get(child, child)
        actual = self.choices.get(child)
        if actual:
            return tuple((key + t, f"_{key}{t}", self.types.get(child + t, child + t)) for t in actual)
        if key == "extension":
            child = "Extension"
        return ((key, "_" + key, self.types.get(child, child)),)

    def where_member_equals(self, condition: Mapping[str, Any], generic: _Eval) -> _Eval | None:
        """``where(key = 'constant')`` (or ``!=``) without building nodes, for the common case.

        The same result as ``_where(generic)``: an item whose ``key`` gives no value is dropped, more than
        one value is unequal, one value is compared with ``==``. Items the shortcut does not model (not a
        JSON object, a choice type or a Quantity) go through ``generic``.
        """
        op = (condition.get("terminalNodeText") or [None])[0]
        sides = condition.get("children") or []
        if condition.get("type") != "EqualityExpression" or op not in ("=", "!=") or len(sides) != 2:
            return None
        key: str | None = None
        constant: Any = None
        for member_side, literal_side in ((sides[0], sides[1]), (sides[1], sides[0])):
            is_literal, constant = _literal_value(literal_side)
            key = _plain_member(member_side)
            if is_literal and key is not None:
                break
        else:
            return None
        negate = op == "!="
        step = self._step
        steps: dict[str | None, tuple[tuple[str, str, str], ...]] = {}

        def where(coll: list[Any], env: Mapping[str, Any]) -> list[Any]:
            out = []
            for item in coll:
                data = item.data if isinstance(item, ResourceNode) else None
                if type(data) is dict:
                    path = item.path
                    candidates = steps.get(path)
                    if candidates is None:
                        candidates = steps[path] = step(path, key)
                    if len(candidates) == 1 and candidates[0][2] not in _QUANTITY_PATHS:
                        field, ufield, _ = candidates[0]
                        count, first = _count_first(data.get(field), data.get(ufield))
                        if count and not isinstance(first, (FP_Type, dict)):
                            if (count == 1 and bool(first == constant)) is not negate:
                                out.append(item)
                            continue
                        if not count:
                            continue  # no value: the condition is empty, the item is dropped
                result = generic([item], env)
                if result and result[0]:
                    out.append(item)
            return out

        return where

    def function(self, node: Mapping[str, Any]) -> _Eval:
        children = node.get("children") or []
        functn = children[0] if len(children) == 1 else {}
        parts = functn.get("children") or []
        if functn.get("type") != "Functn" or not parts or parts[0].get("type") != "Identifier":
            raise Unsupported("function")
        name = parts[0].get("text")
        params = [self.expression(p) for p in (parts[1].get("children") or [])] if len(parts) > 1 else []
        if name == "where" and len(params) == 1:
            fused = self.where_member_equals(parts[1]["children"][0], params[0])
            return fused or _where(params[0])
        if name == "exists" and len(params) == 1:
            return _exists_where(params[0])
        if params:
            raise Unsupported(f"{name} with parameters")
        simple = _NO_PARAMETER.get(str(name))
        if simple is None:
            raise Unsupported(f"function {name}")
        return simple


# -- evaluators ----------------------------------------------------------------------------------------------


def _empty(coll: list[Any], env: Mapping[str, Any]) -> list[Any]:
    return []


def _chain(first: _Eval, then: _Eval) -> _Eval:
    def chained(coll: list[Any], env: Mapping[str, Any]) -> list[Any]:
        return then(first(coll, env), env)

    return chained


def _first(coll: list[Any], env: Mapping[str, Any]) -> list[Any]:
    return coll[:1]


def _count(coll: list[Any], env: Mapping[str, Any]) -> list[Any]:
    return [len(coll)]


def _exists(coll: list[Any], env: Mapping[str, Any]) -> list[Any]:
    return [bool(coll)]


def _is_empty(coll: list[Any], env: Mapping[str, Any]) -> list[Any]:
    return [not coll]


_NO_PARAMETER: dict[str, _Eval] = {"first": _first, "count": _count, "exists": _exists, "empty": _is_empty}


def _filter(condition: _Eval, coll: list[Any], env: Mapping[str, Any]) -> list[Any]:
    out = []
    for item in coll:
        result = condition([item], env)
        # fhirpathpy keeps an item when the first result is truthy in Python terms
        if result and result[0]:
            out.append(item)
    return out


def _where(condition: _Eval) -> _Eval:
    def where(coll: list[Any], env: Mapping[str, Any]) -> list[Any]:
        return _filter(condition, coll, env)

    return where


def _exists_where(condition: _Eval) -> _Eval:
    def exists(coll: list[Any], env: Mapping[str, Any]) -> list[Any]:
        return [bool(_filter(condition, coll, env))]

    return exists


def _equality(left: _Eval, right: _Eval, *, negate: bool) -> _Eval:
    def equal(coll: list[Any], env: Mapping[str, Any]) -> list[Any]:
        a = left(coll, env)
        b = right(coll, env)
        if not a or not b:
            return []
        a0, b0 = a[0], b[0]
        if _converted(a0, _QUANTITY_PATHS) or _converted(b0, _QUANTITY_PATHS):
            raise Fallback
        # fhirpathpy: different sizes are unequal; same sizes compare the first items only
        same = len(a) == len(b) and bool(_unwrap(a0) == _unwrap(b0))
        return [same is not negate]

    return equal


def _equals_constant(values: _Eval, constant: Any, *, negate: bool) -> _Eval:
    """``values = constant`` (or ``!=``): :func:`_equality` with one side known at compile time."""

    def equal(coll: list[Any], env: Mapping[str, Any]) -> list[Any]:
        a = values(coll, env)
        if not a:
            return []
        a0 = a[0]
        if isinstance(a0, ResourceNode):
            if a0.path in _QUANTITY_PATHS or isinstance(a0.data, FP_Type):
                raise Fallback
            a0 = a0.data
        elif isinstance(a0, FP_Type):
            raise Fallback
        same = len(a) == 1 and bool(a0 == constant)
        return [same is not negate]

    return equal


def _logical(left: _Eval, right: _Eval, decisive: bool) -> _Eval:
    """FHIRPath's three-valued ``and`` (``decisive`` False) or ``or`` (True): either side ``decisive`` decides,
    else an empty side leaves it empty, else the other value. Both sides are evaluated (their Fallbacks too)."""

    def logical(coll: list[Any], env: Mapping[str, Any]) -> list[Any]:
        a = _boolean(left(coll, env))
        b = _boolean(right(coll, env))
        if a is decisive or b is decisive:
            return [decisive]
        if a is None or b is None:
            return []
        return [not decisive]

    return logical


def _plus(left: _Eval, right: _Eval) -> _Eval:
    def plus(coll: list[Any], env: Mapping[str, Any]) -> list[Any]:
        a = left(coll, env)
        b = right(coll, env)
        if not a or not b:
            return []
        if len(a) != 1 or len(b) != 1 or _converted(a[0], _DATE_PATHS) or _converted(b[0], _DATE_PATHS):
            raise Fallback
        x, y = _unwrap(a[0]), _unwrap(b[0])
        if type(x) is not str or type(y) is not str:
            raise Fallback  # numbers, and the errors fhirpathpy raises for other types
        return [x + y]

    return plus


def _string_operand(values: list[Any]) -> str:
    if not values:
        return ""
    if len(values) > 1:
        raise Fallback
    data = _unwrap(values[0])
    if type(data) is not str:
        raise Fallback
    return data


def _amp(left: _Eval, right: _Eval) -> _Eval:
    def amp(coll: list[Any], env: Mapping[str, Any]) -> list[Any]:
        x = _string_operand(left(coll, env))
        y = _string_operand(right(coll, env))
        return [x + y]

    return amp
