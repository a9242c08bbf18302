"""Expanding one template of SDC template-based extraction against a focus: the recursive heart of
:mod:`fhir_safetyplan.extract`.

``templateExtractContext`` first, then ``templateExtractValue``, then the children; primitives through their
``_x`` extensions; markup removed; empty values dropped (:func:`clean`). FHIRPath runs through the
:class:`Evaluation` the extraction passes in, which also collects the issues (SDC: log the error and continue).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from fhir_safetyplan import _fhirpath
from fhir_safetyplan.errors import JSON

_SDC = "http://hl7.org/fhir/uv/sdc/StructureDefinition/"
TEMPLATE_EXTRACT_CONTEXT = _SDC + "sdc-questionnaire-templateExtractContext"
TEMPLATE_EXTRACT_VALUE = _SDC + "sdc-questionnaire-templateExtractValue"
_MARKUP = frozenset((TEMPLATE_EXTRACT_CONTEXT, TEMPLATE_EXTRACT_VALUE))


class Evaluation(Protocol):
    """What a template needs from the extraction it is part of."""

    def error(self, code: str, message: str, where: str) -> None:
        """Record an error issue at ``where`` (a FHIRPath-like location in the Questionnaire)."""

    def evaluate(self, expression: str, focus: Any, variables: Mapping[str, Any], where: str) -> list[Any]:
        """The results of ``expression``; on failure an error issue and ``[]``."""


def ext_string(ext: JSON) -> str | None:
    """The valueString of an extension, or None."""
    value = ext.get("valueString")
    return value if isinstance(value, str) else None


class Template:
    """Expands one template (or element of it) against a focus: the recursive heart of template extraction."""

    __slots__ = ("run",)

    def __init__(self, run: Evaluation) -> None:
        self.run = run

    def _markup(self, extensions: Any, where: str) -> tuple[tuple[str, str | None] | None, str | None]:
        """(context expression + variable name, value expression) from an ``extension`` array."""
        context: tuple[str, str | None] | None = None
        value: str | None = None
        if not extensions:
            return None, None
        for i, ext in enumerate(extensions):
            url = ext.get("url") if isinstance(ext, dict) else None
            if url == TEMPLATE_EXTRACT_CONTEXT and context is None:
                context = self._context_expression(ext, f"{where}.extension[{i}]")
            elif url == TEMPLATE_EXTRACT_VALUE and value is None:
                value = ext_string(ext)
                if value is None:
                    self.run.error(
                        "structure",
                        "templateExtractValue needs a valueString (FHIRPath).",
                        f"{where}.extension[{i}]",
                    )
        return context, value

    def _context_expression(self, ext: JSON, where: str) -> tuple[str, str | None] | None:
        text = ext_string(ext)
        if text is not None:
            return text, None
        expression = ext.get("valueExpression")
        if isinstance(expression, dict) and isinstance(expression.get("expression"), str):
            language = expression.get("language")
            if language not in (None, "text/fhirpath"):
                self.run.error(
                    "not-supported",
                    f"templateExtractContext language {language!r} is not supported: only FHIRPath.",
                    where,
                )
                return None
            name = expression.get("name")
            return expression["expression"], name if isinstance(name, str) and name else None
        self.run.error(
            "structure", "templateExtractContext needs a valueString or a valueExpression (FHIRPath).", where
        )
        return None

    # complex elements
    # ----------------------------------------------------------------------------------------

    def expand_element(
        self, element: JSON, focus: Any, variables: Mapping[str, Any], where: str
    ) -> list[JSON]:
        """0..N copies of a complex element (or resource): context first, then value, then the children."""
        context, value = self._markup(element.get("extension"), where)
        if context is not None:
            expression, name = context
            cwhere = where + ".extension('templateExtractContext')"
            foci = self.run.evaluate(expression, focus, variables, cwhere)
            if not foci:
                return []
        else:
            foci, name = [focus], None
        out: list[JSON] = []
        for f in foci:
            scope: Mapping[str, Any] = variables if name is None else {**variables, name: f}
            children = self.children(element, f, scope, where)
            if value is None:
                out.append(children)
                continue
            vwhere = where + ".extension('templateExtractValue')"
            for result in self.run.evaluate(value, f, scope, vwhere):
                data = _fhirpath.to_json(result)
                if not isinstance(data, dict):
                    self.run.error(
                        "processing",
                        f"templateExtractValue on a complex element gave a {type(data).__name__}, not an "
                        "object; put the expression on the primitive child (e.g. '_reference') instead.",
                        vwhere,
                    )
                    continue
                # static template content stays where the value does not set it (the template is boiler-plate)
                out.append({**children, **data})
        return out

    def children(self, element: JSON, focus: Any, variables: Mapping[str, Any], where: str) -> JSON:
        """A copy of ``element`` with every property templated and the markup removed."""
        out: JSON = {}
        for key, value in element.items():
            if key == "extension":
                kept = [e for e in value if not (isinstance(e, dict) and e.get("url") in _MARKUP)]
                if kept:
                    out[key] = self._complex_list(kept, focus, variables, f"{where}.extension")
                continue
            if key.startswith("_"):
                if key[1:] not in element:  # an '_x' with no 'x': templated from scratch
                    self._primitive(out, key[1:], None, value, focus, variables, where)
                continue
            under = element.get("_" + key)
            if isinstance(value, list):
                if under is not None or (value and not isinstance(value[0], dict)):
                    self._primitive(out, key, value, under, focus, variables, where)
                else:
                    out[key] = self._complex_list(value, focus, variables, f"{where}.{key}")
            elif isinstance(value, dict):
                results = self.expand_element(value, focus, variables, f"{where}.{key}")
                if len(results) == 1:
                    out[key] = results[0]
                elif len(results) > 1:
                    self._too_many(key, len(results), f"{where}.{key}")
            elif under is not None:
                self._primitive(out, key, value, under, focus, variables, where)
            else:
                out[key] = value
        return out

    def _complex_list(
        self, items: list[Any], focus: Any, variables: Mapping[str, Any], where: str
    ) -> list[Any]:
        out: list[Any] = []
        for i, item in enumerate(items):
            if isinstance(item, dict):
                out.extend(self.expand_element(item, focus, variables, f"{where}[{i}]"))
            else:
                out.append(item)
        return out

    def _too_many(self, key: str, n: int, where: str) -> None:
        self.run.error(
            "processing",
            f"'{key}' is a single element in the template but its expression gave {n} values; "
            "select one (e.g. first()) or make the template element an array.",
            where,
        )

    # primitives
    # ----------------------------------------------------------------------------------------------

    def _primitive(
        self,
        out: JSON,
        key: str,
        value: Any,
        under: Any,
        focus: Any,
        variables: Mapping[str, Any],
        where: str,
    ) -> None:
        """Template the primitive property ``key``/``_key`` (single or array) into ``out``."""
        if isinstance(value, list) or isinstance(under, list):
            values = value if isinstance(value, list) else []
            unders = under if isinstance(under, list) else []
            pairs: list[tuple[Any, Any]] = []
            for i in range(max(len(values), len(unders))):
                v = values[i] if i < len(values) else None
                u = unders[i] if i < len(unders) else None
                pairs.extend(self._primitive_values(v, u, focus, variables, f"{where}._{key}[{i}]"))
            pairs = [(v, u) for v, u in pairs if v is not None or u]
            if pairs:
                out[key] = [v for v, _ in pairs]
                if any(u for _, u in pairs):
                    out["_" + key] = [u or None for _, u in pairs]
            return
        pairs = self._primitive_values(value, under, focus, variables, f"{where}._{key}")
        if len(pairs) > 1:
            self._too_many(key, len(pairs), f"{where}._{key}")
            return
        if pairs:
            v, u = pairs[0]
            if v is not None:
                out[key] = v
            if u:
                out["_" + key] = u

    def _primitive_values(
        self, value: Any, under: Any, focus: Any, variables: Mapping[str, Any], where: str
    ) -> list[tuple[Any, JSON | None]]:
        """(value, '_value' object) pairs for one primitive slot: none, the static one, or one per result."""
        if not isinstance(under, dict):
            return [(value, None)]
        context, expression = self._markup(under.get("extension"), where)
        if context is None and expression is None:
            return [(value, self.children(under, focus, variables, where) or None)]
        if context is not None:
            cexpr, name = context
            foci = self.run.evaluate(cexpr, focus, variables, where + ".extension('templateExtractContext')")
        else:
            foci, name = [focus], None
        pairs: list[tuple[Any, JSON | None]] = []
        for f in foci:
            scope: Mapping[str, Any] = variables if name is None else {**variables, name: f}
            rest = self.children(under, f, scope, where) or None
            if expression is None:
                pairs.append((value, rest))
                continue
            vwhere = where + ".extension('templateExtractValue')"
            for result in self.run.evaluate(expression, f, scope, vwhere):
                data = _fhirpath.to_json(result)
                if isinstance(data, (dict, list)):
                    self.run.error(
                        "processing",
                        "templateExtractValue on a primitive gave a complex value; select a primitive "
                        "(e.g. '.code', '.value') or move the expression to the complex element.",
                        vwhere,
                    )
                    continue
                pairs.append((data, rest))
        return pairs


def clean(value: Any) -> Any:
    """Drop None, empty strings, objects and arrays (recursively); keep primitive arrays index-aligned."""
    if isinstance(value, dict):
        out: JSON = {}
        for key, item in value.items():
            partner = key[1:] if key.startswith("_") else "_" + key
            if isinstance(item, list) and isinstance(value.get(partner), list):
                # 'given' and '_given' align by index: keep positions, nulls included
                aligned = [clean(v) for v in item]
                if any(v is not None for v in aligned):
                    out[key] = aligned
                continue
            cleaned = clean(item)
            if cleaned is not None:
                out[key] = cleaned
        return out or None
    if isinstance(value, list):
        items = [c for c in (clean(v) for v in value) if c is not None]
        return items or None
    if value is None or value == "":
        return None
    return value
