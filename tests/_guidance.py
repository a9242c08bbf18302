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

#: what the guidance and the clinical review make specific to one conversation (content.toml: carry = false)
CONVERSATION_SPECIFIC = {
    "samtale.type",  # first or follow-up (content 1.1.0)
    "samtale.uten-partner",  # the partner absent this time
    "samtale.tolk",  # this conversation's interpreter
    "samtale.informert",
    "samtale.involvering",
    "samtale.avslag",
    "samtale.avslag-informert",
    "samtale.atferd-rad",  # 1.1.0: the behaviour advice is in the conversation
    "innsyn.skjul",  # hidden from the portal: decided for each plan's documents
    "trygg-kontakt.gjennomgas",  # the review date agreed last time has mostly passed
    "sarbare.opplysningsplikt",
    "sarbare.opplysningsplikt-merknad",
    "risiko.utfort",
    "risiko.instrument",
    "risiko.dato",
    "risiko.niva",
    "risiko.konklusjon",
    "risiko.utfort-av",
    "avverging.status",  # the duty to avert is assessed in every conversation
    "avverging.merknad",
}
