"""What a FHIR server must offer for our deliveries, checked against its CapabilityStatement."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from fhir_safetyplan import fhir_r4
from fhir_safetyplan.client._errors import FhirError
from fhir_safetyplan.codes import WRITTEN_TYPES
from fhir_safetyplan.errors import JSON, issue

#: what a journal delivery needs from the server: resource type -> interactions
DELIVERY_REQUIREMENTS: dict[str, frozenset[str]] = {
    t: frozenset({"read", "update", "search-type"}) for t in WRITTEN_TYPES
}


def json_objects(value: Any) -> list[JSON]:
    """The objects of a JSON array from a server; FhirError when it is not an array of objects."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise FhirError("The server's answer has an unexpected shape (a list of objects was expected).")
    return value


def capability_problems(
    cs: JSON,
    required: Mapping[str, Iterable[str]],
    system_interactions: Iterable[str],
    fhir_version_prefix: str,
) -> list[JSON]:
    """Everything the statement ``cs`` lacks, as OperationOutcome issues: the FHIR version, a resource type of
    ``required``, its interactions (and update-as-create), a system interaction."""
    found = _gaps(cs, required, system_interactions, fhir_version_prefix)
    return [issue("error", "not-supported", text, where) for text, where in found]


def _gaps(
    cs: JSON,
    required: Mapping[str, Iterable[str]],
    system_interactions: Iterable[str],
    fhir_version_prefix: str,
) -> Iterator[tuple[str, str]]:
    """What ``cs`` lacks: (what to tell, where in the statement), in the order :func:`capability_problems` lists."""
    version = str(cs.get("fhirVersion", ""))
    if not version.startswith(fhir_version_prefix):
        yield (
            f"The server speaks FHIR {version or '(unstated)'}; we need FHIR {fhir_r4.RELEASE} "
            f"({fhir_version_prefix}x). Use the server's {fhir_r4.RELEASE} base URL (HAPI: .../baseR4, .../fhir).",
            "CapabilityStatement.fhirVersion",
        )
    rest = next((r for r in json_objects(cs.get("rest")) if r.get("mode") == "server"), None) or {}
    resources = {r.get("type"): r for r in json_objects(rest.get("resource"))}
    for rtype, interactions in required.items():
        entry = resources.get(rtype)
        if entry is None:
            yield (
                f"The server does not support the resource type {rtype}.",
                "CapabilityStatement.rest.resource",
            )
            continue
        where = f"CapabilityStatement.rest.resource.where(type='{rtype}')"
        have = {i.get("code") for i in json_objects(entry.get("interaction"))}
        missing = sorted(set(interactions) - have)
        if missing:
            yield f"The server does not allow {', '.join(missing)} on {rtype}.", f"{where}.interaction"
        if "update" in interactions and entry.get("updateCreate") is False:
            text = f"The server does not let a PUT with our ids create {rtype} (updateCreate=false)."
            yield text, f"{where}.updateCreate"
    have_system = {i.get("code") for i in json_objects(rest.get("interaction"))}
    missing_system = sorted(set(system_interactions) - have_system)
    if missing_system:
        yield (
            f"The server does not offer {', '.join(missing_system)} at its base.",
            "CapabilityStatement.rest.interaction",
        )
