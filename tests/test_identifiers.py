"""Norwegian identifiers: FNR / D-number check digits, synthetic numbers, organisation and HPR numbers.

Only synthetic identity numbers appear here. Where a "real-looking" number is needed, it is built for a birth
date in 2039 (inside the individual-number series, but nobody is born yet), so it can belong to no one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from fhir_safetyplan.errors import InputError
from fhir_safetyplan.identifiers import (
    DNR_SYSTEM,
    FHN_SYSTEM,
    FNR_SYSTEM,
    HPR_SYSTEM,
    ORGANISATION_NUMBER_SYSTEM,
    check_identifier,
    is_real_looking,
    is_valid_hpr_number,
    is_valid_identity_number,
    is_valid_organisation_number,
    parse_fhn,
    parse_hpr_number,
    parse_identity_number,
    parse_organisation_number,
    synthetic_fnr,
)

W1 = (3, 7, 6, 1, 8, 9, 4, 5, 2)
W2 = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)


def with_check_digits(nine: str) -> str | None:
    """An independent implementation of the two mod-11 check digits (None: no valid number)."""

    def control(digits: str, weights: tuple[int, ...]) -> int | None:
        c = 11 - sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11
        return 0 if c == 11 else (None if c == 10 else c)

    k1 = control(nine, W1)
    if k1 is None:
        return None
    k2 = control(nine + str(k1), W2)
    return None if k2 is None else f"{nine}{k1}{k2}"


def first_valid(prefix6: str, individuals: range) -> str:
    for ind in individuals:
        number = with_check_digits(f"{prefix6}{ind:03d}")
        if number:
            return number
    raise AssertionError("no valid number")


#: Born 31 Dec 2039: a valid, real-looking FNR that nobody can have yet.
UNBORN_FNR = first_valid("311239", range(999, 499, -1))
TENOR = synthetic_fnr(date(1985, 3, 14), style="tenor")
NAV = synthetic_fnr(date(1985, 3, 14), style="nav")
TENOR_DNR = synthetic_fnr(date(1990, 7, 2), style="tenor", dnr=True)


def change_digit(number: str, pos: int, new: str) -> str:
    return number[:pos] + new + number[pos + 1 :]


# -- parsing valid numbers


def test_tenor_synthetic_number_parses_as_synthetic_fnr_with_its_birth_date() -> None:
    parsed = parse_identity_number(TENOR)
    assert (parsed.kind, parsed.synthetic, parsed.synthetic_style) == ("fnr", True, "tenor")
    assert parsed.birth_date == date(1985, 3, 14)
    assert parsed.system == FNR_SYSTEM
    assert TENOR[2:4] == "83"  # month + 80


def test_nav_synthetic_number_adds_40_to_the_month_and_may_be_an_h_number() -> None:
    parsed = parse_identity_number(NAV)
    assert NAV[2:4] == "43"
    assert (parsed.synthetic_style, parsed.may_be_h_number) == ("nav", True)
    assert parsed.birth_date == date(1985, 3, 14)


def test_d_number_adds_40_to_the_day_and_uses_the_d_number_system() -> None:
    parsed = parse_identity_number(TENOR_DNR)
    assert TENOR_DNR[0:2] == "42"
    assert (parsed.kind, parsed.system, parsed.synthetic) == ("dnr", DNR_SYSTEM, True)
    assert parsed.birth_date == date(1990, 7, 2)


def test_real_looking_number_is_not_synthetic_and_is_flagged_real_looking() -> None:
    parsed = parse_identity_number(UNBORN_FNR)
    assert not parsed.synthetic
    assert parsed.birth_date == date(2039, 12, 31)
    assert is_real_looking(UNBORN_FNR)


def test_synthetic_numbers_are_not_real_looking() -> None:
    assert not is_real_looking(TENOR)
    assert not is_real_looking(NAV)
    assert not is_real_looking(TENOR_DNR)


def test_strict_sandbox_guard_can_treat_month_plus_40_as_real_because_of_h_numbers() -> None:
    assert is_real_looking(NAV, plus40_is_synthetic=False)
    assert not is_real_looking(TENOR, plus40_is_synthetic=False)


def test_invalid_numbers_are_not_real_looking() -> None:
    assert not is_real_looking("12345678901")
    assert not is_real_looking(None)


def test_century_follows_the_individual_number_series() -> None:
    assert parse_identity_number(synthetic_fnr(date(1899, 1, 1))).birth_date == date(1899, 1, 1)
    assert parse_identity_number(synthetic_fnr(date(1900, 6, 30))).birth_date == date(1900, 6, 30)
    assert parse_identity_number(synthetic_fnr(date(2005, 2, 28))).birth_date == date(2005, 2, 28)


def test_leap_day_is_a_possible_birth_date_in_a_leap_year() -> None:
    number = synthetic_fnr(date(2000, 2, 29))
    assert parse_identity_number(number).birth_date == date(2000, 2, 29)


def test_repr_of_a_parsed_number_never_shows_the_number() -> None:
    parsed = parse_identity_number(TENOR)
    assert TENOR not in repr(parsed)
    assert TENOR not in str(parsed)


# -- what is wrong, said clearly and without the number


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("1234567890", "must have 11 digits; it has 10"),
        ("123456789012", "it has 12"),
        ("", "it has 0"),
        ("14838 549951", "position 6 is not a digit"),
        ("1483854995a", "position 11 is not a digit"),
        ("١٤٨٣٨٥٤٩٩٥١", "position 1 is not a digit"),  # Arabic-Indic digits are not ASCII digits
        (12345678901, "must be a string of 11 digits, not int"),
        (None, "not NoneType"),
    ],
)
def test_malformed_identity_number_says_what_is_wrong(value: object, fragment: str) -> None:
    with pytest.raises(InputError) as err:
        parse_identity_number(value)
    assert fragment in str(err.value)


def test_wrong_first_check_digit_is_reported_at_position_10() -> None:
    bad = change_digit(TENOR, 9, str((int(TENOR[9]) + 1) % 10))
    with pytest.raises(InputError, match=r"check digit 1 \(position 10\)"):
        parse_identity_number(bad)


def test_wrong_second_check_digit_is_reported_at_position_11() -> None:
    bad = change_digit(TENOR, 10, str((int(TENOR[10]) + 1) % 10))
    with pytest.raises(InputError, match=r"check digit 2 \(position 11\)"):
        parse_identity_number(bad)


@pytest.mark.parametrize(
    ("prefix6", "born"),
    [("318385", date(1985, 3, 31)), ("309085", date(1985, 10, 30)), ("295200", date(2000, 12, 29))],
)
def test_possible_dates_with_synthetic_offsets_are_accepted(prefix6: str, born: date) -> None:
    series = range(999, 499, -1) if born.year >= 2000 else range(499, -1, -1)
    assert parse_identity_number(first_valid(prefix6, series)).birth_date == born


def test_31_april_is_refused() -> None:
    number = first_valid("318485", range(499, -1, -1))  # Tenor month 84 = April
    with pytest.raises(InputError, match="not a possible date"):
        parse_identity_number(number)


def test_29_february_in_a_non_leap_year_is_refused() -> None:
    number = first_valid("298285", range(499, -1, -1))  # Tenor Feb 1985
    with pytest.raises(InputError, match="not a possible date"):
        parse_identity_number(number)


@pytest.mark.parametrize("prefix6", ["001285", "320185", "721285", "011385", "013085", "015385", "019385"])
def test_impossible_day_or_month_is_refused(prefix6: str) -> None:
    number = first_valid(prefix6, range(499, -1, -1))
    with pytest.raises(InputError, match=r"not a possible (day|month)"):
        parse_identity_number(number)


def test_error_messages_never_contain_the_number() -> None:
    bad_inputs = [
        change_digit(TENOR, 9, str((int(TENOR[9]) + 1) % 10)),
        change_digit(TENOR, 10, str((int(TENOR[10]) + 1) % 10)),
        first_valid("298285", range(499, -1, -1)),
        TENOR + "1",
        TENOR[:5] + "x" + TENOR[6:],
    ]
    for value in bad_inputs:
        with pytest.raises(InputError) as err:
            parse_identity_number(value)
        text = str(err.value) + repr(err.value.outcome)
        assert value not in text
        assert TENOR[:6] not in text and TENOR[-5:] not in text


def test_numbers_from_the_2032_rule_are_refused_unless_allowed() -> None:
    # Skatteetaten's published example: first check digit valid only under the 2032 rule (remainder 1).
    example = "30108299939"
    assert not is_valid_identity_number(example)
    parsed = parse_identity_number(example, allow_2032_rule=True)
    assert parsed.birth_date is None  # from 2032 the individual digits no longer give the century


# -- the generator


def test_synthetic_fnr_is_deterministic_and_uses_the_highest_valid_individual_number() -> None:
    assert synthetic_fnr(date(1985, 3, 14)) == synthetic_fnr(date(1985, 3, 14))
    assert TENOR == first_valid("148385", range(499, -1, -1))


def test_synthetic_fnr_honours_a_given_individual_number() -> None:
    number = synthetic_fnr(date(1985, 3, 14), 123 if with_check_digits("148385123") else 124)
    assert number[6:9] in ("123", "124")


def test_synthetic_fnr_refuses_an_individual_number_outside_the_birth_years_series() -> None:
    with pytest.raises(ValueError, match="does not encode birth year 1985"):
        synthetic_fnr(date(1985, 3, 14), 600)


def test_synthetic_fnr_refuses_an_individual_number_without_valid_check_digits() -> None:
    bad = next(i for i in range(500) if with_check_digits(f"148385{i:03d}") is None)
    with pytest.raises(ValueError, match="choose another"):
        synthetic_fnr(date(1985, 3, 14), bad)


def test_synthetic_fnr_refuses_birth_years_that_cannot_be_encoded() -> None:
    with pytest.raises(ValueError, match="1854–2039"):
        synthetic_fnr(date(1850, 1, 1))
    with pytest.raises(ValueError, match="style"):
        synthetic_fnr(date(1985, 1, 1), style="real")  # type: ignore[arg-type]


# -- hypothesis: generated synthetic numbers, and single-digit errors


def _series(year: int) -> range:
    if year <= 1899:
        return range(500, 750)
    if year <= 1999:
        return range(0, 500)
    return range(500, 1000)


@st.composite
def synthetic_numbers(draw: st.DrawFn) -> tuple[str, date, str, bool]:
    """(number, birth date, style, is D-number) for any synthetic FNR or D-number the generator can make."""
    born = draw(st.dates(min_value=date(1854, 1, 1), max_value=date(2039, 12, 31)))
    individual = draw(st.sampled_from(_series(born.year)))
    style = draw(st.sampled_from(["tenor", "nav"]))
    dnr = draw(st.booleans())
    try:
        number = synthetic_fnr(born, individual, style=style, dnr=dnr)
    except ValueError:
        assume(False)
        raise
    return number, born, style, dnr


@given(synthetic_numbers())
def test_generated_synthetic_numbers_always_parse_as_synthetic(case: tuple[str, date, str, bool]) -> None:
    number, born, style, dnr = case
    parsed = parse_identity_number(number)
    assert parsed.synthetic and parsed.synthetic_style == style
    assert parsed.kind == ("dnr" if dnr else "fnr")
    assert parsed.birth_date == born
    assert not is_real_looking(number)
    assert with_check_digits(number[:9]) == number  # agrees with the independent implementation


@given(synthetic_numbers(), st.integers(0, 10), st.integers(1, 9))
def test_one_changed_digit_always_fails(case: tuple[str, date, str, bool], pos: int, delta: int) -> None:
    number = case[0]
    changed = change_digit(number, pos, str((int(number[pos]) + delta) % 10))
    assert not is_valid_identity_number(changed)


@given(st.text(max_size=20))
def test_any_text_either_parses_or_raises_input_error(value: str) -> None:
    try:
        parsed = parse_identity_number(value)
    except InputError as err:
        assert str(err)
    else:
        assert parsed.kind in ("fnr", "dnr")


# -- organisation number, HPR number, felles hjelpenummer


def test_organisation_number_with_correct_check_digit_is_valid() -> None:
    assert parse_organisation_number("974760673") == "974760673"  # Brønnøysundregistrene (public)
    assert is_valid_organisation_number("974760673")


@given(st.integers(0, 8), st.integers(1, 9))
def test_organisation_number_with_one_changed_digit_fails(pos: int, delta: int) -> None:
    good = "974760673"
    assert not is_valid_organisation_number(change_digit(good, pos, str((int(good[pos]) + delta) % 10)))


@pytest.mark.parametrize("value", ["1234567", "12345678", "123456789"])
def test_hpr_number_of_7_to_9_digits_is_accepted(value: str) -> None:
    assert parse_hpr_number(value) == value
    assert is_valid_hpr_number(value)


@pytest.mark.parametrize(
    ("parse", "value", "fragment"),
    [
        (parse_organisation_number, "97476067", "9 digits; it has 8"),
        (parse_organisation_number, "97476067x", "position 9"),
        (parse_organisation_number, "974760674", "check digit"),
        (parse_hpr_number, "123456", "7–9 digits; this one has 6"),
        (parse_hpr_number, "1234567890", "has 10"),
        (parse_hpr_number, "12345a7", "position 6"),
    ],
    ids=lambda v: getattr(v, "__name__", None),
)
def test_a_bad_organisation_or_hpr_number_says_what_is_wrong(
    parse: Callable[[str], str], value: str, fragment: str
) -> None:
    with pytest.raises(InputError, match=fragment):
        parse(value)


def test_felles_hjelpenummer_starts_with_8_or_9_and_has_check_digits() -> None:
    fhn = first_valid("812345", range(0, 1000))
    assert parse_fhn(fhn) == fhn
    with pytest.raises(InputError, match="starts with 8 or 9"):
        parse_fhn(first_valid("712345", range(0, 1000)))
    with pytest.raises(InputError, match="check digits"):
        parse_fhn(change_digit(fhn, 10, str((int(fhn[10]) + 1) % 10)))


# -- check_identifier (used by the validator)


def test_check_identifier_accepts_matching_kinds_and_ignores_unknown_systems() -> None:
    assert check_identifier(FNR_SYSTEM, TENOR) is None
    assert check_identifier(DNR_SYSTEM, TENOR_DNR) is None
    assert check_identifier(HPR_SYSTEM, "1234567") is None
    assert check_identifier(ORGANISATION_NUMBER_SYSTEM, "974760673") is None
    assert check_identifier(FHN_SYSTEM, first_valid("912345", range(0, 1000))) is None
    assert check_identifier("urn:example:local", "anything") is None
    assert check_identifier(None, "anything") is None


def test_check_identifier_refuses_a_d_number_under_the_fnr_system_and_vice_versa() -> None:
    msg = check_identifier(FNR_SYSTEM, TENOR_DNR)
    assert msg is not None and "D-number" in msg and DNR_SYSTEM in msg
    msg = check_identifier(DNR_SYSTEM, TENOR)
    assert msg is not None and "fødselsnummer" in msg and FNR_SYSTEM in msg


def test_check_identifier_names_the_system_but_not_the_value() -> None:
    bad = change_digit(TENOR, 10, str((int(TENOR[10]) + 1) % 10))
    msg = check_identifier(FNR_SYSTEM, bad)
    assert msg is not None and msg.startswith("Fødselsnummer (FNR)") and bad not in msg
