"""The public-sandbox guard: never send a real-looking identity number to a server anyone can read.

:func:`guard_public_server` refuses to send a real-looking national identity number to a public test
server such as hapi.fhir.org, where anyone can read everything. Caveat: NAV-style numbers (month + 40)
count as synthetic, as DESIGN.md decides, although some hospitals give real patients H-numbers with the
same offset; :func:`fhir_safetyplan.identifiers.is_real_looking` has ``plus40_is_synthetic=False`` for a
stricter check.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

from fhir_safetyplan import codes
from fhir_safetyplan.errors import JSON, SafetyPlanError, issue, operation_outcome
from fhir_safetyplan.outcomes import Kind

log = logging.getLogger("fhir_safetyplan.delivery.deliver")

#: public servers where anything sent is readable by anyone; callers add the configured ones (``extra``)
PUBLIC_HOSTS: tuple[str, ...] = ("hapi.fhir.org",)
# 11 digits, also written with separators: 01019010046, 010190 10046, 010190-10046, 01.01.90 100 46.
_SEP = r"[\s.\-]?"
_ELEVEN_DIGITS = re.compile(
    rf"(?<!\d)(\d{{2}}){_SEP}(\d{{2}}){_SEP}(\d{{2}}){_SEP}(\d{{3}}){_SEP}(\d{{2}})(?!\d)"
)
_BASE64_KEYS = re.compile(r"^(data|value[A-Z]?\w*Base64Binary)$")


class RefusedByPolicy(SafetyPlanError):
    """Not sent, by policy: e.g. a real-looking identity number bound for a public test server."""

    kind = Kind.POLICY


def public_hosts(extra: Iterable[str] = ()) -> frozenset[str]:
    """The known public hosts and ``extra`` (the configured ones: ``--public-host``, ``SAFETYPLAN_PUBLIC_HOSTS``)."""
    return frozenset(h.strip().lower().rstrip(".") for h in (*PUBLIC_HOSTS, *extra) if h.strip())


def host_list(text: str) -> tuple[str, ...]:
    """The host names in ``text``, separated by commas or white space (how ``SAFETYPLAN_PUBLIC_HOSTS`` is read)."""
    return tuple(h for h in re.split(r"[,\s]+", text) if h)


def _is_public(server_url: str, hosts: frozenset[str]) -> str | None:
    host = (urlsplit(server_url).hostname or "").lower().rstrip(".")
    return host if any(host == h or host.endswith("." + h) for h in hosts) else None


def _numbers(text: str) -> Iterator[str]:
    for m in _ELEVEN_DIGITS.finditer(text):
        yield "".join(m.groups())


def _walk(node: Any, path: str) -> Iterator[tuple[str, str]]:
    """(FHIRPath-like location, candidate number) for every identity-number candidate in ``node``."""
    if isinstance(node, dict):
        if node.get("system") in (codes.FNR, codes.DNR) and isinstance(node.get("value"), str):
            yield f"{path}.value", re.sub(r"[\s.\-]", "", node["value"])
        for key, value in node.items():
            if isinstance(value, str) and _BASE64_KEYS.match(key):
                # Attachments (the journal note, any attachment, valueBase64Binary) are base64: look inside.
                try:
                    text = base64.b64decode(value, validate=False).decode("utf-8", "replace")
                except (binascii.Error, ValueError):
                    text = ""
                for number in _numbers(text):
                    yield f"{path}.{key}", number
            yield from _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{path}[{i}]")
    elif isinstance(node, str):
        # Free text, narratives and conditional URLs (ifNoneExist, search URLs) can carry a number too.
        for number in _numbers(node):
            yield path, number


def guard_public_server(
    bundle: JSON,
    server_url: str,
    extra_public_hosts: Iterable[str] = (),
    *,
    root: str = "Bundle",
) -> None:
    """Refuse (:class:`RefusedByPolicy`) to send a real-looking identity number to a public server.

    Real-looking: a Norwegian FNR or D-number with valid check digits that is not a synthetic test number
    (Tenor month + 80 and NAV month + 40 count as synthetic; see the module note on H-numbers).

    Checked: FNR / D-number identifiers, and any 11-digit number (also with spaces, dots or dashes) in free
    text, narratives, conditional URLs, and base64 data (``data``, ``value...Base64Binary``). ``bundle`` may
    be any JSON value, e.g. the parameters of a search (``root`` names it in messages). The message names
    where the number is, never the number.
    """
    host = _is_public(server_url, public_hosts(extra_public_hosts))
    if host is None:
        return
    from fhir_safetyplan.identifiers import is_real_looking

    found = sorted({where for where, value in _walk(bundle, root) if is_real_looking(value)})
    if not found:
        return
    what = (
        f"Refused to send to {host}: it is a public test server where anyone can read what is sent, and this "
        "looks like a real national identity number (valid check digits, not a synthetic test number)."
    )
    todo = "Use synthetic numbers (Tenor: month + 80, NAV: month + 40) or send to your own server."
    places = ", ".join(found[:5]) + (" and more" if len(found) > 5 else "")
    log.warning("refused delivery to public host %s: %d real-looking identity number(s)", host, len(found))
    raise RefusedByPolicy(
        f"{what} Found at {places}. {todo}",
        operation_outcome([issue("error", "security", f"{what} {todo}", where) for where in found]),
    )
