"""The tunable limits of response validation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class ValidationOptions:
    """Tunable limits of :func:`validate_response`."""

    #: Longest accepted free-text answer (valueString), in characters.
    max_text_length: int = 10_000
    #: What tag-like text (``<`` before a letter: "Avtale med <Kari>", "avstand <ca. 5 km") in free text is: a
    #: warning (default: it is data, kept as written and escaped in every narrative), an error, or nothing
    #: ("ignore"). Active content (script, event handlers, embedded documents) is an error whatever this says.
    markup: Literal["error", "warning", "ignore"] = "warning"
    #: Check Norwegian identifiers (FNR, D-number, FHN, HPR, organisation number) on subject/source/author.
    check_identifiers: bool = True


DEFAULT_OPTIONS = ValidationOptions()
