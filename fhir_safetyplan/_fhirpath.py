"""FHIRPath for the extraction engine: fhirpathpy with the R4 model, compiled once, plus one local bug fix.

Private module. It imports fhirpathpy (and its models) at import time, so only modules that the CLI loads
lazily (``extract``) import it.

Speed: each expression is parsed once (the strict syntax check's parse tree also becomes fhirpathpy's AST;
a lone plain string literal needs no parse at all), and expressions in the simple subset of
:mod:`fhir_safetyplan._fastpath` run as native closures with fhirpathpy's exact results, ~10× faster;
everything else runs in fhirpathpy as before. :func:`set_fast_path` switches the fast path off (benchmarks).

The union fix (fhirpathpy 2.2.4, still present upstream at the time of writing)
--------------------------------------------------------------------------------
``|`` (and ``union()``, ``distinct()``, ``isDistinct()``) go through ``existence.distinct_fn``. When every
input is a ``ResourceNode`` it de-duplicates on the JSON data and then builds *new* nodes from the bare
data, losing each node's type path. Without the path the R4 model cannot resolve choice types, so
``repeat(item | answer.item).where(answer.value = false)`` returns ``[]`` in fhirpathpy while fhirpath.js
returns the items. :func:`install_union_fix` replaces that branch with one that keeps the first original
node of each distinct value (FHIRPath equality on the data is unchanged; only the node's type information
survives). Suggested upstream fix, in ``fhirpathpy/engine/invocations/existence.py`` ``distinct_fn``: keep
``x[i]`` for the first index of each unique ``json.dumps(data, sort_keys=True)`` instead of
``ResourceNode.create_node(item)``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from functools import lru_cache
from typing import Any

from antlr4 import CommonTokenStream, InputStream, Token  # type: ignore[import-untyped]
from antlr4.error.ErrorListener import ErrorListener  # type: ignore[import-untyped]
from antlr4.tree.Tree import ParseTreeWalker  # type: ignore[import-untyped]
from fhirpathpy import apply_parsed_path
from fhirpathpy.engine import invocations as _invocations
from fhirpathpy.engine.invocations import combining as _combining
from fhirpathpy.engine.invocations import existence as _existence
from fhirpathpy.engine.nodes import FP_Quantity, FP_Type, ResourceNode
from fhirpathpy.engine.util import set_paths
from fhirpathpy.models import models as _models
from fhirpathpy.parser import parse as fhirpathpy_parse
from fhirpathpy.parser.ASTPathListener import ASTPathListener
from fhirpathpy.parser.generated.FHIRPathLexer import FHIRPathLexer
from fhirpathpy.parser.generated.FHIRPathParser import FHIRPathParser

from fhir_safetyplan import _fastpath, fhir_r4

R4_MODEL: dict[str, Any] = _models[fhir_r4.FHIRPATH_MODEL]
_RAW = {"returnRawData": True}

#: A compiled expression: ``(focus, variables) -> raw results`` (ResourceNodes, FP types or Python values).
Compiled = Callable[[Any, Mapping[str, Any]], list[Any]]

_original_distinct: Callable[[Any, list[Any]], list[Any]] = _existence.distinct_fn
_installed = False


def _distinct_keeping_nodes(ctx: Any, coll: list[Any]) -> list[Any]:
    """``distinct_fn`` that returns the original nodes (with their type paths) rather than rebuilt ones."""
    if coll and all(isinstance(v, ResourceNode) for v in coll):
        seen: set[str] = set()
        out: list[Any] = []
        for node in coll:
            try:
                key = json.dumps(node.data, sort_keys=True)
            except TypeError:
                key = str(node.data)
            if key not in seen:
                seen.add(key)
                out.append(node)
        return out
    return _original_distinct(ctx, coll)


def install_union_fix() -> None:
    """Patch fhirpathpy: ``|``, ``union()``, ``distinct()``, ``isDistinct()`` keep node types (idempotent)."""
    global _installed
    if _installed:
        return
    # union_op and isdistinct_fn look distinct_fn up as a module global at call time; the registry holds
    # a direct
    # reference to the function object, so both places are patched.
    _existence.distinct_fn = _distinct_keeping_nodes
    registry: dict[str, dict[str, Any]] = _invocations.invocation_registry  # type: ignore[assignment]
    registry["distinct"]["fn"] = _distinct_keeping_nodes
    # union_op calls ``existence.distinct_fn`` through the module: make sure that is still how it works
    assert getattr(_combining, "existence", None) is _existence
    _installed = True


install_union_fix()


class FhirPathSyntaxError(ValueError):
    """The expression does not parse."""


class _RaiseOnError(ErrorListener):  # type: ignore[misc]
    def syntaxError(self, recognizer: Any, offending: Any, line: int, column: int, msg: str, e: Any) -> None:
        raise FhirPathSyntaxError(f"column {column + 1}: {msg}")


def _strict_parse(expression: str) -> Any:
    """The ANTLR parse tree of ``expression``; :class:`FhirPathSyntaxError` on any syntax error."""
    listener = _RaiseOnError()
    lexer = FHIRPathLexer(InputStream(expression))
    lexer.removeErrorListeners()
    lexer.addErrorListener(listener)
    tokens = CommonTokenStream(lexer)
    parser = FHIRPathParser(tokens)
    parser.removeErrorListeners()
    parser.addErrorListener(listener)
    tree = parser.expression()
    if tokens.LA(1) != Token.EOF:
        token = tokens.LT(1)
        raise FhirPathSyntaxError(f"column {token.column + 1}: unexpected {token.text!r}")
    return tree


def check_syntax(expression: str) -> None:
    """Raise :class:`FhirPathSyntaxError` unless ``expression`` is one complete FHIRPath expression.

    fhirpathpy's own parse recovers from syntax errors silently (``item.where(`` and ``)`` "parse"), so a
    typo in a Questionnaire would give wrong results instead of an error; this strict pass prevents that.
    """
    _strict_parse(expression)


def _ast(tree: Any) -> dict[str, Any]:
    """fhirpathpy's AST for a parse tree: what ``fhirpathpy.parser.parse`` builds, without parsing again.

    Only for trees that parsed without errors: then the token stream and the parser's decisions are the
    ones fhirpathpy's own parse makes (tests/test_fastpath.py checks the ASTs are equal).
    """
    listener = ASTPathListener()  # type: ignore[no-untyped-call]
    ParseTreeWalker.DEFAULT.walk(listener, tree)
    ast: dict[str, Any] = listener.parentStack[0]
    return ast


#: Whether :func:`compile_expression` uses the native fast path (benchmarks switch it off to compare).
_fast_path_enabled = True


def set_fast_path(enabled: bool) -> None:
    """Switch the native fast path on or off for expressions compiled from now on (clears the cache)."""
    global _fast_path_enabled
    _fast_path_enabled = enabled
    compile_expression.cache_clear()


@lru_cache(maxsize=2048)
def compile_expression(expression: str) -> Compiled:
    """Parse ``expression`` once (cached) and return a function evaluating it against the R4 model.

    The function returns raw results: ``ResourceNode`` objects keep their type path, so they can be the focus
    of further expressions (nested template contexts) and choice types such as ``answer.value`` resolve.
    Expressions in the subset of :mod:`fhir_safetyplan._fastpath` run as native closures (same results as
    fhirpathpy); everything else, and the rare evaluations the fast path hands back, run in fhirpathpy.
    Raises :class:`FhirPathSyntaxError` when the expression does not parse.
    """
    return _compile(expression, fast=_fast_path_enabled)


@lru_cache(maxsize=2048)
def compile_reference(expression: str) -> Compiled:
    """Like :func:`compile_expression` but always fhirpathpy (no fast path): the reference for tests."""
    return _compile(expression, fast=False)


def fast_path_of(expression: str) -> _fastpath.FastCompiled | None:
    """The native evaluator for ``expression``, or None when it is outside the fast subset (for tests).

    The evaluator may raise :class:`fhir_safetyplan._fastpath.Fallback` for an input it leaves to fhirpathpy.
    """
    if "$this" in expression:
        return None
    try:
        ast = _string_literal_ast(expression) or _ast(_strict_parse(expression))
        return _fastpath.compile_ast(ast, R4_MODEL)
    except _fastpath.Unsupported:
        return None


#: One string literal with no escapes: one STRING token, whatever the characters (the lexer's '.' matches all).
_PLAIN_STRING = re.compile(r"'[^'\\]*'\Z")


def _string_literal_ast(expression: str) -> dict[str, Any] | None:
    """fhirpathpy's AST for a plain string literal such as ``'not-started'``, built without ANTLR.

    Most template values are constants like this, and the ANTLR parse (≈ 2–5 ms each on a cold start) is
    most of the first extraction's cost. tests/test_fastpath.py checks this AST equals fhirpathpy's parse.
    """
    if not _PLAIN_STRING.match(expression) or "$this" in expression:  # '$this' keeps select() (above)
        return None
    literal = {"type": "StringLiteral", "terminalNodeText": [expression], "text": expression}
    term = {"type": "LiteralTerm", "terminalNodeText": [], "text": expression, "children": [literal]}
    return {
        "children": [
            {"type": "TermExpression", "terminalNodeText": [], "text": expression, "children": [term]}
        ]
    }


def _compile(expression: str, *, fast: bool) -> Compiled:
    constant = _string_literal_ast(expression)
    if constant is None:
        try:
            tree = _strict_parse(expression)
        except FhirPathSyntaxError as exc:
            raise FhirPathSyntaxError(f"FHIRPath syntax error in {expression!r} at {exc}") from None
    fast_fn: _fastpath.FastCompiled | None = None
    try:
        if constant is not None:
            parsed = constant
        elif "$this" in expression:
            # fhirpathpy defines $this only inside iterating functions (a top-level '$this' raises KeyError).
            # The engine always evaluates on a single focus, where select(e) == e with $this bound to the
            # focus.
            parsed = fhirpathpy_parse(f"select({expression})")  # type: ignore[no-untyped-call]
        else:
            parsed = _ast(tree)  # the strict parse already built the tree: don't parse a second time
        # what fhirpathpy.compile does after parsing
        fn = set_paths(apply_parsed_path, parsedPath=parsed, model=R4_MODEL, options=_RAW)  # type: ignore[no-untyped-call]
    except Exception as exc:  # the parser raises several unrelated exception types
        raise FhirPathSyntaxError(f"FHIRPath syntax error in {expression!r}: {exc}") from exc
    if fast and "$this" not in expression:
        try:
            fast_fn = _fastpath.compile_ast(parsed, R4_MODEL)
        except _fastpath.Unsupported:
            fast_fn = None  # outside the subset: fhirpathpy only

    def run(focus: Any, variables: Mapping[str, Any]) -> list[Any]:
        if fast_fn is not None:
            try:
                return fast_fn(focus, variables)
            except _fastpath.Fallback:
                pass  # a case only fhirpathpy decides: evaluate it there
        result = fn(focus, dict(variables))
        return list(result) if isinstance(result, list) else [result]

    return run


def node(data: Any, path: str) -> Any:
    """Wrap JSON ``data`` as a FHIRPath node of type ``path`` (e.g. ``QuestionnaireResponse.item``)."""
    return ResourceNode(data, path)  # type: ignore[no-untyped-call]


def to_json(value: Any) -> Any:
    """Turn one raw FHIRPath result into JSON data (dict, list, str, bool, int or float)."""
    if isinstance(value, ResourceNode):
        value = value.data
    if isinstance(value, FP_Quantity):
        out: dict[str, Any] = {"value": to_json(value.value)}
        unit = str(value.unit).strip("'")
        out["code"] = unit
        return out
    if isinstance(value, FP_Type):
        return str(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, Decimal):
        if value == value.to_integral_value() and "." not in str(value) and "E" not in str(value):
            return int(value)
        return float(value)
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_json(v) for v in value]
    return value
