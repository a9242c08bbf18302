"""SDC 4.0 template-based ``$extract``: a generic engine executing any Questionnaire's extraction markup.

What it implements (SDC 4.0.0, ``extraction.html#template-based-extraction``):

- ``sdc-questionnaire-templateExtract`` on the Questionnaire root (FHIRPath context: the
  QuestionnaireResponse; one resource) and on items (context: that QR item; one resource per QR repetition
  of the item, none when the item is not answered). Sub-extensions ``template`` (``#id`` of a contained
  resource), ``fullUrl``, ``resourceId`` (→ ``PUT Type/id``, else ``POST Type``), ``ifNoneMatch``,
  ``ifModifiedSince``, ``ifMatch``, ``ifNoneExist``.
- ``sdc-questionnaire-templateExtractContext`` (valueString or valueExpression; an Expression ``name``
  becomes a variable for the children) and ``sdc-questionnaire-templateExtractValue`` on any element of the
  template, context first, then value: no result removes the element (only that entry of an array), N
  results clone it N times, context results become the focus of the children. Primitives are templated
  through their ``_x`` extensions (``x`` and ``_x`` are one property; other extensions on ``_x`` stay).
- ``sdc-questionnaire-extractAllocateId`` on the root (one ``urn:uuid:`` per extraction) and on items (one
  per QR repetition, visible to that item and its descendants).
- Variables ``%resource`` / ``%rootResource`` (the QR), ``%questionnaire``, ``%context`` and the allocated
  ids.
- The template's ``id`` and all markup are removed; empty strings, objects and arrays are dropped.
- FHIRPath errors and bad markup are collected; if any is an error, :class:`ExtractError` carries them all
  in an OperationOutcome instead of a Bundle (SDC: "log the error and continue … return an
  OperationOutcome").

Not implemented: ``templateExtractBundle`` (raises ``ExtractError`` with code ``not-supported``).

Only resource types, counts and expression locations go into messages and logs; never answer values.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from fhir_safetyplan import _fhirpath
from fhir_safetyplan.errors import JSON, InputError, has_errors, issue, operation_outcome
from fhir_safetyplan.extract_template import (
    TEMPLATE_EXTRACT_CONTEXT,
    TEMPLATE_EXTRACT_VALUE,
    Template,
    clean,
    ext_string,
)

__all__ = [
    "EXTRACT_ALLOCATE_ID",
    "TEMPLATE_EXTRACT",
    "TEMPLATE_EXTRACT_BUNDLE",
    "TEMPLATE_EXTRACT_CONTEXT",
    "TEMPLATE_EXTRACT_VALUE",
    "ExtractError",
    "extract",
    "extract_with_issues",
]

log = logging.getLogger(__name__)

_SDC = "http://hl7.org/fhir/uv/sdc/StructureDefinition/"
TEMPLATE_EXTRACT = _SDC + "sdc-questionnaire-templateExtract"
TEMPLATE_EXTRACT_BUNDLE = _SDC + "sdc-questionnaire-templateExtractBundle"
EXTRACT_ALLOCATE_ID = _SDC + "sdc-questionnaire-extractAllocateId"

#: templateExtract sub-extensions that are FHIRPath strings, in the order they are evaluated
_REQUEST_SLICES = ("ifNoneMatch", "ifModifiedSince", "ifMatch", "ifNoneExist")
_QR_ITEM_TYPE = "QuestionnaireResponse.item"


class ExtractError(InputError):
    """Extraction failed: a FHIRPath expression failed, the markup is wrong, or the input is not extractable.

    ``outcome`` lists every problem, each with its location in the Questionnaire (FHIRPath-like path).
    """


def extract(response: JSON, questionnaire: JSON, *, new_id: Callable[[], str] | None = None) -> JSON:
    """SDC template-based ``$extract``: the transaction Bundle that ``questionnaire`` makes of ``response``.

    ``new_id`` makes the uuids for ``urn:uuid:`` fullUrls and allocated ids (default ``uuid.uuid4``); pass a
    deterministic one for reproducible output. Raises :class:`ExtractError` (with an OperationOutcome) on
    FHIRPath errors, bad markup, or a Questionnaire without template extraction markup. Warnings are dropped;
    use :func:`extract_with_issues` to see them.
    """
    bundle, _ = extract_with_issues(response, questionnaire, new_id=new_id)
    return bundle


def extract_with_issues(
    response: JSON, questionnaire: JSON, *, new_id: Callable[[], str] | None = None
) -> tuple[JSON, JSON]:
    """Like :func:`extract`, and also return the OperationOutcome with the warnings (or the 'all OK' one)."""
    _check_inputs(response, questionnaire)
    run = _Run(response, questionnaire, new_id or _uuid4)
    bundle = run.execute()
    outcome = operation_outcome(run.issues)
    if has_errors(outcome):
        n = sum(1 for i in run.issues if i["severity"] in ("error", "fatal"))
        log.info("extract failed: %d error(s) for Questionnaire/%s", n, questionnaire.get("id", "?"))
        raise ExtractError(f"Extraction failed with {n} error(s): {_first_error(run.issues)}", outcome)
    log.debug("extracted %d resource(s)", len(bundle.get("entry", [])))
    return bundle, outcome


def _uuid4() -> str:
    return str(uuid.uuid4())


def _first_error(issues: list[JSON]) -> str:
    for i in issues:
        if i["severity"] in ("error", "fatal"):
            where = f" (at {i['expression'][0]})" if i.get("expression") else ""
            return f"{i['diagnostics']}{where}"
    return ""


def _fail(code: str, message: str, where: str | None = None) -> ExtractError:
    return ExtractError(message, operation_outcome([issue("error", code, message, where)]))


def _check_inputs(response: Any, questionnaire: Any) -> None:
    if not isinstance(response, dict) or response.get("resourceType") != "QuestionnaireResponse":
        raise _fail("invalid", "The response to extract from is not a QuestionnaireResponse resource.")
    if not isinstance(questionnaire, dict) or questionnaire.get("resourceType") != "Questionnaire":
        raise _fail("invalid", "The questionnaire to extract with is not a Questionnaire resource.")
    canonical = response.get("questionnaire")
    url = questionnaire.get("url")
    if isinstance(canonical, str) and url and not canonical.startswith("#"):
        r_url, _, r_version = canonical.partition("|")
        version = questionnaire.get("version")
        if r_url != url or (r_version and version and r_version != version):
            raise _fail(
                "invalid",
                f"QuestionnaireResponse.questionnaire is {canonical!r} but the Questionnaire is "
                f"{url}|{version}: extract with the Questionnaire the response was made from.",
                "QuestionnaireResponse.questionnaire",
            )
    if any(e.get("url") == TEMPLATE_EXTRACT_BUNDLE for e in questionnaire.get("extension", []) or []):
        raise _fail(
            "not-supported",
            "templateExtractBundle is not supported by this engine: use templateExtract on the root or on "
            "items.",
            "Questionnaire.extension('sdc-questionnaire-templateExtractBundle')",
        )


def _allocate_names(holder: JSON) -> list[str]:
    """The extractAllocateId variable names declared on a Questionnaire or item."""
    out: list[str] = []
    for ext in holder.get("extension", []) or []:
        if ext.get("url") == EXTRACT_ALLOCATE_ID:
            name = ext_string(ext)
            if name:
                out.append(name)
    return out


class _Ref:
    """One parsed templateExtract extension."""

    __slots__ = ("expressions", "template", "template_id", "where")

    def __init__(self, template_id: str, template: JSON, expressions: dict[str, str], where: str) -> None:
        self.template_id = template_id
        self.template = template
        self.expressions = expressions
        self.where = where


class _Run:
    """State of one extraction: inputs, variables, issues and the entries built so far."""

    def __init__(self, qr: JSON, questionnaire: JSON, new_id: Callable[[], str]) -> None:
        self.qr = qr
        self.questionnaire = questionnaire
        self.new_id = new_id
        self.issues: list[JSON] = []
        self.entries: list[JSON] = []
        self.contained: dict[str, JSON] = {
            r["id"]: r for r in questionnaire.get("contained", []) or [] if isinstance(r, dict) and "id" in r
        }
        qr_node = _fhirpath.node(qr, "QuestionnaireResponse")
        self.base_vars: dict[str, Any] = {
            "resource": qr_node,
            "rootResource": qr_node,
            "questionnaire": _fhirpath.node(questionnaire, "Questionnaire"),
        }

    # -- issues and evaluation -------------------------------------------------------------------------------

    def error(self, code: str, message: str, where: str) -> None:
        self.issues.append(issue("error", code, message, where))

    def evaluate(self, expression: str, focus: Any, variables: Mapping[str, Any], where: str) -> list[Any]:
        """Raw results of ``expression``; on any failure an error issue and ``[]`` (SDC: log and continue)."""
        try:
            fn = _fhirpath.compile_expression(expression)
        except _fhirpath.FhirPathSyntaxError as exc:
            self.error("invalid", f"{exc}. Fix the expression in the Questionnaire.", where)
            return []
        try:
            return fn(focus, variables)
        except Exception as exc:  # fhirpathpy raises many exception types for evaluation errors
            self.error(
                "processing",
                f"FHIRPath expression {expression!r} failed: {type(exc).__name__}: {exc}",
                where,
            )
            return []

    # -- the Questionnaire side ------------------------------------------------------------------------------

    def execute(self) -> JSON:
        q = self.questionnaire
        root_vars = self._allocate(q, self.base_vars)
        root_refs = self._refs(q, "Questionnaire")
        item_refs: dict[str, list[_Ref]] = {}
        item_alloc: dict[str, list[str]] = {}
        self._collect_items(q.get("item", []) or [], "Questionnaire", item_refs, item_alloc)
        if not root_refs and not item_refs and not self.issues:
            raise _fail(
                "not-supported",
                "The Questionnaire has no sdc-questionnaire-templateExtract extension, so there is nothing "
                "to extract: add templateExtract markup (SDC template-based extraction).",
                "Questionnaire",
            )
        qr_node = self.base_vars["resource"]
        for ref in root_refs:
            self._extract_resource(ref, qr_node, root_vars)
        if item_refs:
            self._walk_response(self.qr.get("item", []) or [], root_vars, item_refs, item_alloc)
        self._check_full_urls()
        bundle: JSON = {"resourceType": "Bundle", "type": "transaction"}
        if self.entries:
            bundle["entry"] = self.entries
        return bundle

    def _allocate(self, holder: JSON, variables: dict[str, Any]) -> dict[str, Any]:
        names = _allocate_names(holder)
        if not names:
            return variables
        out = dict(variables)
        for name in names:
            out[name] = "urn:uuid:" + self.new_id()
        return out

    def _collect_items(
        self,
        items: list[JSON],
        path: str,
        refs: dict[str, list[_Ref]],
        alloc: dict[str, list[str]],
    ) -> None:
        for item in items:
            link_id = item.get("linkId", "")
            where = f"{path}.item.where(linkId='{link_id}')"
            found = self._refs(item, where)
            if found:
                refs[link_id] = found
            names = _allocate_names(item)
            if names:
                alloc[link_id] = names
            self._collect_items(item.get("item", []) or [], where, refs, alloc)

    def _refs(self, holder: JSON, where: str) -> list[_Ref]:
        out: list[_Ref] = []
        for i, ext in enumerate(holder.get("extension", []) or []):
            if ext.get("url") != TEMPLATE_EXTRACT:
                continue
            ref_where = f"{where}.extension[{i}]"
            template_id: str | None = None
            expressions: dict[str, str] = {}
            for sub in ext.get("extension", []) or []:
                name = sub.get("url")
                if name == "template":
                    reference = (sub.get("valueReference") or {}).get("reference")
                    if not isinstance(reference, str) or not reference.startswith("#") or template_id:
                        self.error(
                            "structure",
                            "templateExtract needs exactly one 'template' with a reference to a contained "
                            "resource ('#id').",
                            ref_where,
                        )
                        template_id = None
                        break
                    template_id = reference[1:]
                elif name in ("fullUrl", "resourceId", *_REQUEST_SLICES):
                    value = ext_string(sub)
                    if value is None:
                        message = f"templateExtract.{name} needs a valueString (FHIRPath)."
                        self.error("structure", message, ref_where)
                    else:
                        expressions[name] = value
            else:
                if template_id is None:
                    self.error("structure", "templateExtract has no 'template' sub-extension.", ref_where)
            if template_id is None:
                continue
            template = self.contained.get(template_id)
            if template is None:
                self.error(
                    "not-found",
                    f"templateExtract refers to '#{template_id}', which is not a contained resource of the "
                    "Questionnaire.",
                    ref_where,
                )
                continue
            out.append(_Ref(template_id, template, expressions, ref_where))
        return out

    # -- the response side -----------------------------------------------------------------------------------

    def _walk_response(
        self,
        items: list[JSON],
        variables: dict[str, Any],
        refs: dict[str, list[_Ref]],
        alloc: dict[str, list[str]],
    ) -> None:
        for item in items:
            if not isinstance(item, dict):
                continue
            link_id = item.get("linkId", "")
            item_vars = variables
            names = alloc.get(link_id)
            if names:
                item_vars = dict(variables)
                for name in names:
                    item_vars[name] = "urn:uuid:" + self.new_id()
            item_refs = refs.get(link_id)
            # an item with neither answers nor children was not answered: no resource (SDC templateExtract)
            if item_refs and (item.get("answer") or item.get("item")):
                focus = _fhirpath.node(item, _QR_ITEM_TYPE)
                for ref in item_refs:
                    self._extract_resource(ref, focus, item_vars)
            self._walk_response(item.get("item", []) or [], item_vars, refs, alloc)
            for answer in item.get("answer", []) or []:
                if isinstance(answer, dict) and answer.get("item"):
                    self._walk_response(answer["item"], item_vars, refs, alloc)

    # -- one templateExtract at one focus -> bundle entries

    def _extract_resource(self, ref: _Ref, focus: Any, variables: dict[str, Any]) -> None:
        template = ref.template
        rtype = template.get("resourceType", "Resource")
        where = f"Questionnaire.contained.where(id='{ref.template_id}')"
        resources = Template(self).expand_element(template, focus, variables, where)
        for resource in resources:
            resource.pop("id", None)
            resource = clean(resource) or {"resourceType": rtype}
            resource_id = self._entry_string(ref, "resourceId", focus, variables)
            full_url = self._entry_string(ref, "fullUrl", focus, variables)
            request: JSON = {"method": "POST", "url": rtype}
            if resource_id:
                resource = {"resourceType": rtype, "id": resource_id, **resource}
                request = {"method": "PUT", "url": f"{rtype}/{resource_id}"}
            for name in _REQUEST_SLICES:
                value = self._entry_string(ref, name, focus, variables)
                if value:
                    request[name] = value
            self.entries.append(
                {
                    "fullUrl": full_url or "urn:uuid:" + self.new_id(),
                    "resource": resource,
                    "request": request,
                }
            )

    def _entry_string(self, ref: _Ref, name: str, focus: Any, variables: Mapping[str, Any]) -> str | None:
        expression = ref.expressions.get(name)
        if expression is None:
            return None
        where = f"{ref.where}.extension('{name}')"
        results = [_fhirpath.to_json(r) for r in self.evaluate(expression, focus, variables, where)]
        if not results:
            return None
        if len(results) > 1 or not isinstance(results[0], (str, int)) or isinstance(results[0], bool):
            self.error(
                "processing",
                f"templateExtract.{name} must give one string, but gave {len(results)} value(s) of type "
                f"{type(results[0]).__name__}.",
                where,
            )
            return None
        return str(results[0]) or None

    def _check_full_urls(self) -> None:
        seen: set[str] = set()
        for i, entry in enumerate(self.entries):
            url = entry["fullUrl"]
            if url in seen:
                self.error(
                    "processing",
                    f"Two extracted resources have the same fullUrl (entry {i}); a fullUrl expression must "
                    "give each resource its own value (e.g. an item-level extractAllocateId).",
                    "Bundle.entry.fullUrl",
                )
            seen.add(url)
