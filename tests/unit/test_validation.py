"""Checks of typed values: email addresses, names and departments."""

from __future__ import annotations

import pytest

from cf_portal.services.errors import DomainError
from cf_portal.services.validation import check_department, check_person_name, normalise_email


def test_email_is_trimmed_and_lower_cased_as_a_whole() -> None:
    assert normalise_email("  Ada.Lovelace@Example.COM \t") == "ada.lovelace@example.com"


def test_international_email_is_accepted_and_lower_cased() -> None:
    email = normalise_email("Zoë@Bücher.DE")
    assert email == "zoë@bücher.de"
    assert email == email.lower()


@pytest.mark.parametrize("text", ["", "   ", "ada", "ada@", "@example.com", "ada@example", "ada lovelace@example.com",
                                  "ada@@example.com", "ada@exa mple.com", '"ada"@example.com'])
def test_invalid_email_is_refused_with_a_friendly_message(text: str) -> None:
    with pytest.raises(DomainError) as caught:
        normalise_email(text)
    assert caught.value.field == "email"
    assert caught.value.message.startswith("Enter")
    assert "name@company.com" in caught.value.message


def test_email_of_254_characters_is_accepted_but_255_is_refused() -> None:
    domain = ".".join(["d" * 60] * 4) + ".com"  # 247 characters
    assert normalise_email(f"abcdef@{domain}") == f"abcdef@{domain}"  # 254
    text = f"abcdefg@{domain}"
    assert len(text) == 255
    with pytest.raises(DomainError) as caught:
        normalise_email(text)
    assert caught.value.field == "email"
    assert "254" in caught.value.message


def test_email_error_names_the_field_it_is_asked_for() -> None:
    with pytest.raises(DomainError) as caught:
        normalise_email("nope", field="contact_email")
    assert caught.value.field == "contact_email"


def test_person_name_is_trimmed() -> None:
    assert check_person_name("  Ada Lovelace  ") == "Ada Lovelace"


@pytest.mark.parametrize("text", ["", "    ", "\t"])
def test_blank_person_name_is_refused(text: str) -> None:
    with pytest.raises(DomainError) as caught:
        check_person_name(text)
    assert caught.value.field == "name"
    assert caught.value.message == "Enter a name."


def test_person_name_may_have_120_characters_but_not_121() -> None:
    assert check_person_name("x" * 120) == "x" * 120
    with pytest.raises(DomainError) as caught:
        check_person_name("x" * 121)
    assert "120" in caught.value.message
    assert "121" in caught.value.message


def test_person_name_error_uses_the_given_field() -> None:
    with pytest.raises(DomainError) as caught:
        check_person_name("", field="contact_name")
    assert caught.value.field == "contact_name"


def test_person_name_on_two_lines_is_refused() -> None:
    with pytest.raises(DomainError) as caught:
        check_person_name("Ada\nLovelace")
    assert "line breaks" in caught.value.message


def test_department_is_trimmed_and_may_be_empty() -> None:
    assert check_department("") == ""
    assert check_department("   ") == ""
    assert check_department("  Sales ") == "Sales"


def test_department_may_have_80_characters_but_not_81() -> None:
    assert check_department("d" * 80) == "d" * 80
    with pytest.raises(DomainError) as caught:
        check_department("d" * 81)
    assert caught.value.field == "department"
    assert "80" in caught.value.message
