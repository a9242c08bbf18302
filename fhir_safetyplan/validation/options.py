"""The tunable limits of response validation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class ValidationOptions:
    """Tunable limits of :func:`validate_response`."""

    #: Longest accepted free-text answer (valueString), in characters.
    max_text_length: int = 10_000
    #: What a tag-like ``<x`` in free text is: an error (default: the journal stores plain text), a warning,
    #: or nothing ("ignore").
    markup: Literal["error", "warning", "ignore"] = "error"
    #: Check Norwegian identifiers (FNR, D-number, FHN, HPR, organisation number) on subject/source/author.
    check_identifiers: bool = True


DEFAULT_OPTIONS = ValidationOptions()
