"""What the guidance says, written down once for the tests as the specification the generated content is held to
(not read from ``content.toml``, which is what is being checked)."""

from __future__ import annotations

#: the guidance's checklist of the safety plan, in its order: the last part of each checklist item's linkId
GUIDANCE_KEYS = [
    "romningsplan",
    "politi",
    "telefonnumre",
    "krisesenter",
    "penger",
    "nokler",
    "kode",
    "naboer",
    "vapen",
    "bag",
]
