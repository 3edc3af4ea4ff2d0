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


# --- Names: one validator for every free-text name --------------------------------------------------------------

# Characters that hide or reorder what a reader sees: controls (Cc), bidirectional overrides, isolates and marks,
# zero-width and other format characters (Cf), line and paragraph separators.
HIDDEN = {
    "right-to-left override": "\u202e", "left-to-right embedding": "\u202a", "pop directional": "\u202c",
    "first strong isolate": "\u2068", "pop isolate": "\u2069", "right-to-left mark": "\u200f",
    "left-to-right mark": "\u200e", "arabic letter mark": "\u061c", "zero-width space": "\u200b",
    "word joiner": "\u2060", "byte order mark": "\ufeff", "soft hyphen": "\u00ad", "null": "\x00",
    "escape": "\x1b", "line separator": "\u2028", "next line": "\x85",
}


def name_checks():  # noqa: ANN201
    """Every check of a free-text name, with the form field its message goes next to."""
    from cf_portal.services.auth import check_company_name
    from cf_portal.services.checkout import check_reference_name

    return [
        (check_company_name, "company"),
        (check_person_name, "name"),
        (check_reference_name, "reference_name"),
        (check_department, "department"),
    ]


@pytest.mark.parametrize("what", sorted(HIDDEN))
@pytest.mark.parametrize("position", ["start", "middle", "end"])
def test_every_name_check_refuses_characters_that_hide_or_reorder_text(what: str, position: str) -> None:
    hidden = HIDDEN[what]
    text = {"start": f"{hidden}Acme Ltd", "middle": f"Acme{hidden}gpj.exe Ltd", "end": f"Acme Ltd{hidden}"}[position]
    for check, field in name_checks():
        if hidden.isspace() and position != "middle":  # separators at either end are trimmed like spaces
            assert check(text) == "Acme Ltd"
            continue
        with pytest.raises(DomainError) as caught:
            check(text)
        assert caught.value.field == field, check
        assert "invisible" in caught.value.message, caught.value.message


def test_names_are_normalised_to_nfc_and_trimmed() -> None:
    decomposed = "  Zoe\u0308 Mu\u0308ller \u3000"  # e + combining diaeresis; an ideographic space at the end
    for check, _ in name_checks():
        assert check(decomposed) == "Zoë Müller", check


@pytest.mark.parametrize("text", ["محمد\u200cرضا", "Renée O'Brien-Łukasz", "山田 太郎", "Ünal & Søn GmbH", "👩\u200d💻 Team"])
def test_real_names_in_any_script_are_accepted(text: str) -> None:
    """Zero-width (non-)joiners are how Persian, Indic scripts and emoji sequences are written: they stay."""
    for check, _ in name_checks():
        assert check(text) == text, check


def test_the_length_limit_counts_the_normalised_name() -> None:
    assert check_person_name("e\u0301" * 120) == "é" * 120  # 240 code points typed, 120 characters kept


def test_names_are_checked_wherever_they_are_typed_or_imported(seeded) -> None:  # noqa: ANN001
    """Sign-up (company and person), employees, child accounts, invitations and the CSV import all refuse a
    right-to-left override, next to the field it is in; the company name is shown on the public invitation page."""
    from cf_portal.db import session_scope
    from cf_portal.services import auth, employee_import, employees, members
    from tests.unit.conftest import NOW

    spoof = "Acme\u202eLtd"
    with pytest.raises(auth.FormErrors) as caught:
        auth.sign_up(seeded.engine, company=spoof, name=spoof, email="fay@newco.example",
                     password="correct horse battery", client="", now=NOW)
    assert {field: "invisible" in message for field, message in caught.value.by_field().items()} == {
        "company": True, "name": True}
    for save in (lambda s: employees.save_employee(s, actor=seeded.actor, name=spoof, email="e@x.example",
                                                   department=""),
                 lambda s: employees.save_employee(s, actor=seeded.actor, name="Eve", email="e@x.example",
                                                   department=spoof),
                 lambda s: employees.save_child_account(s, actor=seeded.actor, name=spoof,
                                                        contact_email="c@x.example")):
        with pytest.raises(DomainError, match="invisible"), session_scope(seeded.engine) as session:
            save(session)
    data = f"name,email,department\r\n{spoof},a@x.example,Sales\r\nBob,b@x.example,Sa\u2066les\r\n".encode()
    with session_scope(seeded.engine, write=False) as session:
        preview = employee_import.preview_import(session, account_id=seeded.actor.account_id, data=data)
    assert [("invisible" in row.error) for row in preview.errors] == [True, True] and not preview.can_import
    with session_scope(seeded.engine) as session:
        link = members.invite(session, actor=seeded.actor, email="new.hire@x.example", role="viewer", base_url="",
                              now=NOW).link
    with pytest.raises(auth.FormErrors) as caught:
        members.accept_invitation(seeded.engine, token=link.split("token=")[1], name=spoof,
                                  password="correct horse battery", confirm="correct horse battery", client="",
                                  now=NOW)
    assert "invisible" in caught.value.by_field()["name"]
