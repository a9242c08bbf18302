"""Deterministic ids: submission ids derived from content, and the server ids and ``urn:uuid:`` fullUrls of one
submission's resources.

Deterministic, so that sending the same plan again (or retrying after a lost answer) updates the same resources
instead of creating copies; derived by hashing, so that nothing of the key (which may hold an identity number)
can be read from an id.
"""

from __future__ import annotations

import hashlib
import uuid

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
