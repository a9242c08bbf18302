"""Text-safety rules for free text that ends up in the journal: control characters, length, bidirectional
overrides and markup."""

from __future__ import annotations

import re

from fhir_safetyplan.validation.options import ValidationOptions

# Control characters a journal must never store (C0 except tab/newline/return, DEL, C1) and lone surrogates,
# which cannot even be encoded as UTF-8 and would break serialisation further down the pipeline.
# Control characters, lone surrogates and the noncharacters U+FFFE/U+FFFF (not allowed in XML, so they would make
# the XHTML narrative ill-formed and the server refuse the plan).
CONTROL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
# A tag or comment opener as an HTML parser sees it ("<b", "</", "<!", "<?"); "a < b" and "<3" do not match.
# Clinicians write such text ("Avtale med <Kari>", "avstand <ca. 5 km"): it is data, a warning at most.
MARKUP_RE = re.compile(r"<[A-Za-z!/?]")
# Active content: elements that run or embed something, event-handler attributes and script URLs. No clinical
# text needs them, and a record system that shows the plain-text note as HTML would run them: always an error.
ACTIVE_RE = re.compile(
    r"<\s*/?\s*(script|iframe|frame|frameset|object|embed|applet|style|link|meta|base|form|svg|math|img|image"
    r"|video|audio|source|track|input|button|textarea|select|template|portal)(?![A-Za-z0-9_-])"
    r"|<[^>]*?[\s/\"']on[a-z]+\s*="
    r"|(java|vb)script\s*:|data\s*:\s*text/html",
    re.IGNORECASE,
)
# Bidirectional embedding/override/isolate controls: they make text display in another order than it is stored
# (a journal note could show something other than what it says), and no clinical text needs them.
BIDI_RE = re.compile("[\u202a-\u202e\u2066-\u2069]")


def text_problems(
    s: str, options: ValidationOptions
) -> list[tuple[str, str, str]]:  # (severity, code, message fragment)
    out: list[tuple[str, str, str]] = []
    if CONTROL_RE.search(s):
        out.append(
            (
                "error",
                "value",
                "contains control characters (only tab, newline and carriage return are allowed); "
                "remove them — the text may have been pasted from another program",
            )
        )
    if len(s) > options.max_text_length:
        out.append(
            (
                "error",
                "too-long",
                f"is {len(s)} characters long; at most {options.max_text_length} are accepted — shorten it",
            )
        )
    if BIDI_RE.search(s):
        out.append(
            (
                "error",
                "value",
                "contains bidirectional override characters (U+202A-U+202E, U+2066-U+2069), which make the "
                "text display differently from what it says; remove them",
            )
        )
    if ACTIVE_RE.search(s):
        out.append(
            (
                "error",
                "security",
                "contains active markup (a script, an event handler, an embedded object or a script URL); no "
                "clinical text needs it — remove it (the text may have been pasted from a web page)",
            )
        )
    elif options.markup != "ignore" and MARKUP_RE.search(s):
        out.append(
            (
                options.markup,
                "security",
                "contains '<' before a letter, which looks like markup (an HTML tag '<…'); it is kept as text "
                "and escaped in every narrative"
                + (" — write it without '<' before a letter" if options.markup == "error" else ""),
            )
        )
    return out
