"""Norwegian identifiers: national identity numbers (FNR, D-number), organisation number, HPR number.

What is checked, and where the rules come from:

- **Fødselsnummer (FNR)** and **D-nummer (DNR)**: 11 digits, ``DDMMYY`` + three individual digits + two check
  digits. Check digit 1 uses weights 3,7,6,1,8,9,4,5,2 over digits 1–9, check digit 2 uses 5,4,3,2,7,6,5,4,3,2
  over digits 1–10; each is ``11 - (sum mod 11)``, where 11 becomes 0 and 10 means no valid number exists with
  those first digits (Skatteetaten; Folkeregisterforskriften § 2-2-1). A D-number adds 4 to the first digit
  (day + 40).
- **Synthetic test numbers** (never issued to a real person): NAV's test data (Dolly) adds 40 to the
  month; Skatteetaten's Tenor / Test-Norge adds 80 to the month. Both keep valid check digits and may be
  combined with the D-number day + 40.
- **H-nummer** (a hospital's internal "hjelpenummer" for a patient whose identity number is unknown) *also*
  adds 40 to the month. An 11-digit number with month + 40 is therefore ambiguous: a NAV synthetic number or
  a real patient's H-number. H-numbers are local (system ``HNR`` with a local namespace, not the FNR OID), so
  one should never appear under the FNR/D-number systems; we classify month + 40 as NAV-synthetic and expose
  :attr:`IdentityNumber.may_be_h_number` so that a caller guarding a public sandbox can choose to treat it as
  real (``is_real_looking(value, plus40_is_synthetic=False)``).
- **Felles hjelpenummer (FHN)**, administered by Norsk helsenett: 11 digits with the same two check digits;
  first digit 8 or 9 (as described by public validators; no date, no sex). Checked by :func:`parse_fhn`.
- **New numbers from 2032** (Skatteetaten, "Nytt fødselsnummer fra 2032"): for numbers issued after
  1 January 2032 the first check digit is valid when the weighted sum including it is 0, 1, 2 or 3 mod 11,
  and the individual digits no longer say the century. No such numbers exist yet, and accepting them makes the
  check four times weaker, so :func:`parse_identity_number` accepts them only with ``allow_2032_rule=True``.
- **Organisasjonsnummer** (Enhetsregisteret): 9 digits; check digit = ``11 - (sum mod 11)`` with weights
  3,2,7,6,5,4,3,2 over digits 1–8 (11 → 0, 10 → invalid).
- **HPR-nummer** (Helsepersonellregisteret): a sequence number assigned by the register; no public check-digit
  algorithm exists, so only "digits, 7–9 of them" can be checked offline. Whether a number really belongs to a
  health professional needs a look-up in HPR.

Privacy: error messages and ``repr`` never contain the number, only what kind of problem there is and at which
position, so they can be logged and returned to callers safely.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from fhir_safetyplan.errors import InputError

#: Fødselsnummer (no-basis-Patient slice FNR; NamingSystem no-basis-fodselsnummer).
FNR_SYSTEM = "urn:oid:2.16.578.1.12.4.1.4.1"
#: D-nummer (no-basis-Patient slice DNR).
DNR_SYSTEM = "urn:oid:2.16.578.1.12.4.1.4.2"
#: Felles hjelpenummer (Norsk helsenett).
FHN_SYSTEM = "urn:oid:2.16.578.1.12.4.1.4.3"
#: Helsepersonellregisteret (HPR) number (no-basis-Practitioner slice HPR).
HPR_SYSTEM = "urn:oid:2.16.578.1.12.4.1.4.4"
#: Organisasjonsnummer in Enhetsregisteret (no-basis-Organization slice ENH).
ORGANISATION_NUMBER_SYSTEM = "urn:oid:2.16.578.1.12.4.1.4.101"
#: RESH-id (Register for enheter i spesialisthelsetjenesten); not checkable offline.
RESH_SYSTEM = "urn:oid:2.16.578.1.12.4.1.4.102"

#: Systems whose values are national identity numbers of persons (personal data).
PERSON_IDENTITY_SYSTEMS = frozenset({FNR_SYSTEM, DNR_SYSTEM, FHN_SYSTEM})

_W1 = (3, 7, 6, 1, 8, 9, 4, 5, 2)
_W2 = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)
_W_ORG = (3, 2, 7, 6, 5, 4, 3, 2)

Kind = Literal["fnr", "dnr"]
SyntheticStyle = Literal["nav", "tenor"]


@dataclass(frozen=True, slots=True)
class IdentityNumber:
    """A parsed FNR or D-number. ``value`` is kept out of ``repr`` so the object is safe to log."""

    value: str = field(repr=False)
    kind: Kind
    #: True for NAV/Dolly (month + 40) and Tenor (month + 80) test numbers.
    synthetic: bool
    synthetic_style: SyntheticStyle | None
    #: The birth date when the individual digits tell the century (and the date is possible), else None.
    birth_date: date | None
    #: The Identifier.system OID for this kind (FNR or D-number).
    system: str
    #: Month + 40 is also how hospitals write internal H-numbers of real patients (see module docstring).
    may_be_h_number: bool = False


def _check_digit(digits: str, weights: tuple[int, ...]) -> int | None:
    """The mod-11 check digit for ``digits`` (None when the remainder makes it 10: no valid number)."""
    total = sum(int(d) * w for d, w in zip(digits, weights, strict=True))
    control = 11 - total % 11
    if control == 11:
        return 0
    if control == 10:
        return None
    return control


def _century(individual: int, yy: int) -> int | None:
    """The century of birth from the individual digits (Folkeregisterforskriften); None when undefined."""
    if individual <= 499:
        return 1900
    if individual <= 749 and yy >= 54:
        return 1800
    if individual >= 500 and yy <= 39:
        return 2000
    if individual >= 900 and yy >= 40:
        return 1900
    return None


def _digits(value: object, length: int, what: str) -> str:
    """``value`` when it is ``length`` ASCII digits, else an :class:`InputError` saying why (never the value)."""
    if not isinstance(value, str):
        raise InputError(f"{what} must be a string of {length} digits, not {type(value).__name__}")
    for pos, ch in enumerate(value, start=1):
        if not ("0" <= ch <= "9"):
            raise InputError(
                f"{what} must contain digits only; the character at position {pos} is not a digit "
                "(remove spaces, dots and dashes)"
            )
    if len(value) != length:
        raise InputError(f"{what} must have {length} digits; it has {len(value)}")
    return value


def _parses(parse: Callable[[object], object], value: object) -> bool:
    """True when ``parse`` takes ``value`` without an :class:`InputError` (the ``is_valid_*`` answers)."""
    try:
        parse(value)
    except InputError:
        return False
    return True


def parse_identity_number(value: object, *, allow_2032_rule: bool = False) -> IdentityNumber:
    """Parse a fødselsnummer or D-number; raise :class:`InputError` saying what is wrong (never echoing it).

    Checks: 11 digits, both check digits, a possible day and month (after removing the D-number and synthetic
    offsets). ``allow_2032_rule`` also accepts first check digits valid under the rule for numbers issued from
    2032 (see module docstring).
    """
    value = _digits(value, 11, "A national identity number (fødselsnummer or D-number)")
    s = value

    sum1 = sum(int(d) * w for d, w in zip(s[:9], _W1, strict=True)) + int(s[9])
    remainder_ok = (0, 1, 2, 3) if allow_2032_rule else (0,)
    if sum1 % 11 not in remainder_ok:
        if _check_digit(s[:9], _W1) is None and not allow_2032_rule:
            raise InputError(
                "The national identity number is not valid: no check digit exists for its first nine digits "
                "(a mistyped digit in positions 1–9?)"
            )
        raise InputError(
            "The national identity number is not valid: check digit 1 (position 10) does not match "
            "(a mistyped digit?)"
        )
    expected2 = _check_digit(s[:10], _W2)
    if expected2 is None or expected2 != int(s[10]):
        raise InputError(
            "The national identity number is not valid: check digit 2 (position 11) does not match "
            "(a mistyped digit?)"
        )

    day, month, yy, individual = int(s[0:2]), int(s[2:4]), int(s[4:6]), int(s[6:9])
    kind: Kind = "fnr"
    if day > 40:
        kind, day = "dnr", day - 40
    style: SyntheticStyle | None = None
    if month > 80:
        style, month = "tenor", month - 80
    elif month > 40:
        style, month = "nav", month - 40
    if not 1 <= month <= 12:
        raise InputError(
            "The national identity number is not valid: positions 3–4 are not a possible month "
            "(01–12, or +40 / +80 for synthetic test numbers)"
        )
    if not 1 <= day <= 31:
        raise InputError(
            "The national identity number is not valid: positions 1–2 are not a possible day "
            "(01–31, or 41–71 for a D-number)"
        )
    century = None if allow_2032_rule else _century(individual, yy)
    years = [century + yy] if century is not None else [1800 + yy, 1900 + yy, 2000 + yy]
    possible = [y for y in years if day <= calendar.monthrange(y, month)[1]]
    if not possible:
        raise InputError(
            "The national identity number is not valid: positions 1–4 are not a possible date "
            "(that month does not have that day)"
        )
    birth = date(century + yy, month, day) if century is not None else None
    return IdentityNumber(
        value=s,
        kind=kind,
        synthetic=style is not None,
        synthetic_style=style,
        birth_date=birth,
        system=DNR_SYSTEM if kind == "dnr" else FNR_SYSTEM,
        may_be_h_number=style == "nav",
    )


def is_valid_identity_number(value: object) -> bool:
    """True when ``value`` is a valid FNR or D-number (real or synthetic)."""
    return _parses(parse_identity_number, value)


def is_real_looking(value: object, *, plus40_is_synthetic: bool = True) -> bool:
    """True when ``value`` is a valid FNR/D-number that is not a synthetic test number.

    With ``plus40_is_synthetic=False`` a month + 40 number counts as real too, because hospitals use the same
    offset for H-numbers of real patients (a stricter guard for public sandboxes).
    """
    try:
        parsed = parse_identity_number(value)
    except InputError:
        return False
    if parsed.synthetic_style == "nav" and not plus40_is_synthetic:
        return True
    return not parsed.synthetic


def parse_fhn(value: object) -> str:
    """Check a felles hjelpenummer (11 digits, first digit 8 or 9, two mod-11 check digits); return it."""
    value = _digits(value, 11, "A felles hjelpenummer")
    if value[0] not in "89":
        raise InputError("A felles hjelpenummer starts with 8 or 9; position 1 is neither")
    if _check_digit(value[:9], _W1) != int(value[9]) or _check_digit(value[:10], _W2) != int(value[10]):
        raise InputError(
            "The felles hjelpenummer is not valid: its check digits do not match (a mistyped digit?)"
        )
    return value


def parse_organisation_number(value: object) -> str:
    """Check an organisation number (9 digits, mod-11 check digit); return it or raise :class:`InputError`."""
    value = _digits(value, 9, "An organisation number (organisasjonsnummer)")
    if _check_digit(value[:8], _W_ORG) != int(value[8]):
        raise InputError(
            "The organisation number is not valid: its check digit (position 9) does not match "
            "(look it up in Enhetsregisteret, brreg.no)"
        )
    return value


def is_valid_organisation_number(value: object) -> bool:
    """True when ``value`` is a 9-digit organisation number with a correct check digit."""
    return _parses(parse_organisation_number, value)


def parse_hpr_number(value: object) -> str:
    """Check an HPR number as far as possible offline (7–9 digits; there is no check digit); return it."""
    if not isinstance(value, str):
        raise InputError(f"An HPR number must be a string of 7–9 digits, not {type(value).__name__}")
    for pos, ch in enumerate(value, start=1):
        if not ("0" <= ch <= "9"):
            raise InputError(
                f"An HPR number must contain digits only; the character at position {pos} is not"
            )
    if not 7 <= len(value) <= 9:
        raise InputError(f"An HPR number has 7–9 digits; this one has {len(value)}")
    return value


def is_valid_hpr_number(value: object) -> bool:
    """True when ``value`` looks like an HPR number (7–9 digits)."""
    return _parses(parse_hpr_number, value)


def check_identifier(system: object, value: object) -> str | None:
    """Why an Identifier with a known Norwegian ``system`` has a bad ``value`` (None when fine or unknown).

    The message names the system, never the value. FNR/D-number values must also be of the system's kind
    (a D-number under the FNR system is an error).
    """
    if not isinstance(system, str):
        return None
    try:
        if system == FNR_SYSTEM or system == DNR_SYSTEM:
            parsed = parse_identity_number(value)
            if parsed.system != system:
                found = "a D-number" if parsed.kind == "dnr" else "a fødselsnummer"
                return (
                    f"{_system_label(system)}: the value is {found}; use system {parsed.system} for it "
                    "or correct the number"
                )
        elif system == FHN_SYSTEM:
            parse_fhn(value)
        elif system == HPR_SYSTEM:
            parse_hpr_number(value)
        elif system == ORGANISATION_NUMBER_SYSTEM:
            parse_organisation_number(value)
        else:
            return None
    except InputError as err:
        return f"{_system_label(system)}: {err}"
    return None


def _system_label(system: str) -> str:
    return {
        FNR_SYSTEM: "Fødselsnummer (FNR)",
        DNR_SYSTEM: "D-number (DNR)",
        FHN_SYSTEM: "Felles hjelpenummer (FHN)",
        HPR_SYSTEM: "HPR number",
        ORGANISATION_NUMBER_SYSTEM: "Organisation number",
    }.get(system, system)


def _century_range(year: int) -> range:
    """Individual numbers that give ``year`` its century (highest first, as Folkeregisteret assigns them)."""
    if 1854 <= year <= 1899:
        return range(749, 499, -1)
    if 1900 <= year <= 1999:
        return range(499, -1, -1)
    if 2000 <= year <= 2039:
        return range(999, 499, -1)
    raise ValueError(f"birth year {year} cannot be encoded (1854–2039 only)")


def synthetic_fnr(
    birth_date: date,
    individual: int | None = None,
    *,
    style: SyntheticStyle = "tenor",
    dnr: bool = False,
) -> str:
    """A synthetic FNR (or D-number with ``dnr=True``) for tests and examples, with valid check digits.

    ``style`` "tenor" adds 80 to the month (Skatteetaten Tenor), "nav" adds 40 (NAV/Dolly). Without
    ``individual`` the highest individual number of the birth year's series that gives valid check digits is
    used, so the result is deterministic. Raises ValueError when ``individual`` is outside the series for the
    birth year or gives no valid check digit (choose another).
    """
    if style not in ("tenor", "nav"):
        raise ValueError(f"style must be 'tenor' or 'nav', not {style!r}")
    series = _century_range(birth_date.year)
    day = birth_date.day + (40 if dnr else 0)
    month = birth_date.month + (80 if style == "tenor" else 40)
    prefix = f"{day:02d}{month:02d}{birth_date.year % 100:02d}"
    candidates: range | tuple[int, ...] = series
    if individual is not None:
        if individual not in series:
            raise ValueError(
                f"individual number {individual} does not encode birth year {birth_date.year} "
                f"(use {series.stop + 1}–{series.start})"
            )
        candidates = (individual,)
    for ind in candidates:
        nine = f"{prefix}{ind:03d}"
        k1 = _check_digit(nine, _W1)
        if k1 is None:
            continue
        k2 = _check_digit(f"{nine}{k1}", _W2)
        if k2 is None:
            continue
        return f"{nine}{k1}{k2}"
    raise ValueError(
        f"individual number {individual} gives no valid check digits for this date; choose another"
    )


def organisation_number_check_digit(first8: str) -> int | None:
    """The check digit for the first 8 digits of an organisation number (None: no valid number exists)."""
    if len(first8) != 8 or not first8.isascii() or not first8.isdigit():
        raise ValueError("first8 must be 8 ASCII digits")
    return _check_digit(first8, _W_ORG)
