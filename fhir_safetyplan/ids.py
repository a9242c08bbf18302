"""Deterministic ids: submission ids derived from content, and the server ids and ``urn:uuid:`` fullUrls of one
submission's resources.

Deterministic, so that sending the same plan again (or retrying after a lost answer) updates the same resources
instead of creating copies; derived by hashing, so that nothing of the key (which may hold an identity number)
can be read from an id.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any
from urllib.parse import unquote

#: Namespace for the deterministic urn:uuid fullUrls of one submission's resources.
NAMESPACE = uuid.UUID("3c1f0b5e-6a55-4f3e-9d5e-5afe71a2b0c1")


def full_url(submission: str, rtype: str) -> str:
    """The deterministic ``urn:uuid:`` fullUrl of one resource of a submission."""
    return f"urn:uuid:{uuid.uuid5(NAMESPACE, f'{submission}/{rtype}')}"


def derived_id(key: str) -> str:
    """A submission id derived from ``key`` (a UUID from its SHA-256): stable for the same key, and revealing
    nothing of it."""
    return str(uuid.UUID(hashlib.sha256(key.encode()).hexdigest()[:32]))


def resource_id(submission: str, rtype: str) -> str:
    """The deterministic server id of one resource of a submission (alphanumeric, never purely numeric)."""
    return "sp-" + hashlib.sha256(f"{submission}/{rtype}".encode()).hexdigest()[:24]


def patient_key(subject: Any) -> str:
    """What identifies the patient when ids are scoped to one patient: the FNR/D-number identifier
    (``system|value``) when the subject has one — also when it is given as a conditional reference
    ``Patient?identifier=system|value`` — else the literal reference (``Patient/<id>``); "" without either."""
    if not isinstance(subject, dict):
        return ""
    ident = subject.get("identifier")
    if (
        isinstance(ident, dict)
        and isinstance(ident.get("system"), str)
        and isinstance(ident.get("value"), str)
    ):
        return f"identifier {ident['system']}|{ident['value']}"
    reference = subject.get("reference")
    if not isinstance(reference, str):
        return ""
    rtype, _, query = reference.partition("?identifier=")
    if rtype == "Patient" and "|" in query and "&" not in query:
        return f"identifier {unquote(query)}"
    return f"reference {reference}"


def plan_scope(submission: str, subject: Any) -> str:
    """The key every id of one plan is derived from: the submission *and* the patient.

    Two senders that number their messages alike, or one that reuses a number for another patient, give
    the same ``submission`` for two patients; scoped by the patient, their plans get disjoint ids, so one
    patient's resources can never be overwritten by another patient's plan (that would take a SHA-256
    collision). The same submission for the same patient keeps its ids: a resend updates, never copies.
    """
    return derived_id(f"plan\n{patient_key(subject)}\n{submission}")
