"""Employees from CSV (preview, all-or-nothing import) and the export of who holds which seat."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from cf_portal.db import session_scope
from cf_portal.models import Account, AuditEvent, Employee, License, Product, SeatAssignment
from cf_portal.services import employee_import
from cf_portal.services.actors import Actor
from cf_portal.services.employee_import import (
    EXPORT_HEADER,
    MAX_BYTES,
    MAX_ROWS,
    ImportPreview,
    apply_import,
    export_assignments_csv,
    preview_import,
)
from cf_portal.services.errors import DomainError
from tests.factories import make_child_account, make_employee, make_license
from tests.unit.conftest import NOW, Seeded

BOM = b"\xef\xbb\xbf"


def csv_bytes(*lines: str, bom: bool = False) -> bytes:
    return (BOM if bom else b"") + "\r\n".join(lines).encode("utf-8") + b"\r\n"


def preview(seeded: Seeded, data: bytes, actor: Actor | None = None) -> ImportPreview:
    with session_scope(seeded.engine, write=False) as session:
        return preview_import(session, account_id=(actor or seeded.actor).account_id, data=data)


def apply(seeded: Seeded, data: bytes, actor: Actor | None = None) -> int:
    with session_scope(seeded.engine) as session:
        return apply_import(session, actor=actor or seeded.actor, data=data)


def employees_of(seeded: Seeded, actor: Actor | None = None) -> dict[str, Employee]:
    with session_scope(seeded.engine, write=False) as session:
        rows = session.exec(select(Employee).where(Employee.account_id == (actor or seeded.actor).account_id))
        return {employee.email: employee for employee in rows}


def import_events(seeded: Seeded) -> list[AuditEvent]:
    with session_scope(seeded.engine, write=False) as session:
        return list(session.exec(select(AuditEvent).where(AuditEvent.action == "employees.imported")))


def add_employee(seeded: Seeded, actor: Actor | None = None, **values) -> Employee:  # noqa: ANN003
    with session_scope(seeded.engine) as session:
        account = session.get(Account, (actor or seeded.actor).account_id)
        return make_employee(session, account, **values)


def refused_without_writing(seeded: Seeded, data: bytes) -> DomainError:
    before = employees_of(seeded)
    with pytest.raises(DomainError) as caught:
        apply(seeded, data)
    assert caught.value.field == "file"
    assert employees_of(seeded).keys() == before.keys()
    assert import_events(seeded) == []
    return caught.value


# --- A good file -------------------------------------------------------------------------------------------------


GOOD_FILE = csv_bytes(
    " Email ,NAME,Department ",
    "Ada.Lovelace@Example.COM,  Ada Lovelace ,Engineering",
    "grace@example.com,Grace Hopper,",
    '"linus@example.com","Torvalds, Linus"," Kernel "',
    bom=True,
)


def test_good_file_with_bom_and_odd_header_case_and_order_previews_cleanly(seeded: Seeded) -> None:
    result = preview(seeded, GOOD_FILE)
    assert result.file_error == ""
    assert (result.total_rows, result.valid_rows, result.error_count) == (3, 3, 0)
    assert result.errors == []
    assert result.can_import is True
    assert [(row.line, row.name, row.email, row.department, row.error) for row in result.sample] == [
        (2, "Ada Lovelace", "ada.lovelace@example.com", "Engineering", ""),
        (3, "Grace Hopper", "grace@example.com", "", ""),
        (4, "Torvalds, Linus", "linus@example.com", "Kernel", ""),
    ]


def test_good_file_imports_every_row_with_lower_cased_emails_and_one_audit_event(seeded: Seeded) -> None:
    before = employees_of(seeded)

    assert apply(seeded, GOOD_FILE) == 3

    after = employees_of(seeded)
    assert set(after) - set(before) == {"ada.lovelace@example.com", "grace@example.com", "linus@example.com"}
    ada = after["ada.lovelace@example.com"]
    assert (ada.name, ada.department, ada.active) == ("Ada Lovelace", "Engineering", True)
    assert after["linus@example.com"].name == "Torvalds, Linus"
    [event] = import_events(seeded)
    assert (event.account_id, event.actor_user_id) == (seeded.actor.account_id, seeded.actor.user_id)
    assert (event.object_type, event.detail) == ("employee", "3 employees from CSV")


def test_department_column_is_optional(seeded: Seeded) -> None:
    assert apply(seeded, csv_bytes("name,email", "Ada,ada@example.com")) == 1
    assert employees_of(seeded)["ada@example.com"].department == ""


def test_semicolon_separated_file_from_a_european_excel_is_read(seeded: Seeded) -> None:
    result = preview(seeded, csv_bytes("Name;E-mail;Department", "x;y;z"))
    assert "E-mail" in result.file_error  # an unknown column: the header is read with semicolons

    result = preview(seeded, csv_bytes("Name;Email;Department", "Müller, Jo;jo@example.com;Vertrieb"))
    assert result.can_import
    assert (result.sample[0].name, result.sample[0].department) == ("Müller, Jo", "Vertrieb")


def test_blank_lines_are_skipped_and_lines_are_the_files_own_line_numbers(seeded: Seeded) -> None:
    data = csv_bytes(
        "name,email",
        "",
        '"Ada',  # a quoted value over two lines: lines 3 and 4, refused (a name is one line)
        'Lovelace",ada@example.com',
        "Grace,not-an-email",
        ",,",
        "Linus,linus@example.com",
    )
    result = preview(seeded, data)
    assert result.total_rows == 3
    assert [row.line for row in result.sample] == [3, 5, 7]
    assert [row.line for row in result.errors] == [3, 5]
    assert "line breaks" in result.errors[0].error
    assert "valid email address" in result.errors[1].error


# --- Bad rows ----------------------------------------------------------------------------------------------------


def test_bad_rows_each_get_their_own_error_and_nothing_is_imported(seeded: Seeded) -> None:
    add_employee(seeded, name="Taken", email="taken@example.com")
    data = csv_bytes(
        "name,email,department",
        "Ada,ada@example.com,Engineering",  # 2: fine
        "Bad Email,bad-email@,Sales",  # 3
        "   ,noname@example.com,Sales",  # 4
        "Ada Again,ADA@example.com,Sales",  # 5: duplicate of line 2
        "Taken Again,Taken@Example.com,Sales",  # 6: an employee already has it
        "Too,many,values,here",  # 7
        "Too few",  # 8
        f"Long Department,long@example.com,{'d' * 81}",  # 9
    )
    result = preview(seeded, data)

    assert result.file_error == ""
    assert (result.total_rows, result.valid_rows, result.error_count) == (8, 1, 7)
    assert result.can_import is False
    errors = {row.line: row.error for row in result.errors}
    assert list(errors) == [3, 4, 5, 6, 7, 8, 9]
    assert "valid email address" in errors[3]
    assert errors[4] == "Enter a name."
    assert errors[5] == "Duplicate of line 2."
    assert errors[6] == "An employee with this email already exists."
    assert "4 values but the header line has 3" in errors[7]
    assert "1 values but the header line has 3" in errors[8]
    assert "80 characters" in errors[9]
    assert result.errors[0].email == "bad-email@"  # shown as written, to be found in the file
    assert [row.line for row in result.sample] == [2, 3, 4, 5, 6, 7, 8, 9]

    error = refused_without_writing(seeded, data)
    assert "7 rows have errors" in error.message
    assert "Line 3" in error.message


def test_one_row_can_have_several_problems(seeded: Seeded) -> None:
    result = preview(seeded, csv_bytes("name,email", ",nope"))
    [row] = result.errors
    assert "Enter a name." in row.error
    assert "valid email address" in row.error


def test_errors_list_and_sample_are_capped_but_every_error_is_counted(seeded: Seeded) -> None:
    data = csv_bytes("name,email", *[f"Person {i},not-an-email-{i}" for i in range(250)])
    result = preview(seeded, data)
    assert (result.total_rows, result.valid_rows, result.error_count) == (250, 0, 250)
    assert len(result.errors) == 200
    assert len(result.sample) == 50
    assert result.errors[-1].line == 201


def test_existing_emails_are_looked_up_in_one_query(seeded: Seeded) -> None:
    data = csv_bytes("name,email", *[f"Person {i},person{i}@example.com" for i in range(300)])
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001
        statements.append(statement)

    sa.event.listen(seeded.engine, "before_cursor_execute", record)
    try:
        assert preview(seeded, data).can_import
    finally:
        sa.event.remove(seeded.engine, "before_cursor_execute", record)
    employee_queries = [s for s in statements if "FROM employee" in s]
    assert len(employee_queries) == 1
    assert "account_id" in employee_queries[0]


def test_import_checks_the_file_again_and_never_trusts_an_earlier_preview(seeded: Seeded) -> None:
    data = csv_bytes("name,email", "Ada,ada@example.com", "Grace,grace@example.com")
    assert preview(seeded, data).can_import
    add_employee(seeded, name="Ada (added meanwhile)", email="ada@example.com")

    error = refused_without_writing(seeded, data)
    assert "already exists" in error.message
    assert "grace@example.com" not in employees_of(seeded)


def test_a_clash_found_only_by_the_database_becomes_a_domain_error_and_writes_nothing(
    seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As if another request added the email between the check and the insert.
    add_employee(seeded, name="Ada", email="ada@example.com")
    monkeypatch.setattr(employee_import, "_existing_emails", lambda session, **_: set())
    data = csv_bytes("name,email", "Grace,grace@example.com", "Ada,ada@example.com")

    with session_scope(seeded.engine) as session:
        with pytest.raises(DomainError) as caught:
            apply_import(session, actor=seeded.actor, data=data)
        assert caught.value.field == "file"
        # The caller's session is still usable and holds nothing of the import.
        emails = session.exec(select(Employee.email).where(Employee.account_id == seeded.actor.account_id)).all()
        assert "ada@example.com" in emails
        assert "grace@example.com" not in emails
    assert "grace@example.com" not in employees_of(seeded)
    assert import_events(seeded) == []


# --- Bad files ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "says"),
    [
        ("name,mail,department", ["no email column", "Unknown column: mail"]),
        ("full name,email", ["no name column", "Unknown column: full name"]),
        ("department", ["no name or email column"]),
        ("name,email,email", ["email column appears more than once"]),
        ("name,email,phone", ["Unknown column: phone"]),
    ],
)
def test_wrong_headers_say_what_is_missing_and_what_is_expected(seeded: Seeded, header: str, says: list[str]
                                                                  ) -> None:
    data = csv_bytes(header, "Ada,ada@example.com,x")
    result = preview(seeded, data)
    for text in [*says, "name, email and (optionally) department"]:
        assert text in result.file_error
    assert result.can_import is False
    assert refused_without_writing(seeded, data).message == result.file_error


def test_a_file_that_is_not_utf8_is_refused_with_how_to_save_it(seeded: Seeded) -> None:
    data = "name,email\nRené Dupont,rene@example.com\n".encode("latin-1")
    result = preview(seeded, data)
    assert "CSV UTF-8" in result.file_error
    assert (result.total_rows, result.can_import) == (0, False)
    refused_without_writing(seeded, data)


def test_a_file_over_5_mb_is_refused(seeded: Seeded) -> None:
    header = b"name,email,department\r\n"
    row = b"Ada Lovelace,ada@example.com,Engineering\r\n"
    data = header + row * ((MAX_BYTES - len(header)) // len(row) + 1)
    assert len(data) > MAX_BYTES
    result = preview(seeded, data)
    assert result.file_error.startswith("The file is larger than 5 MB")
    refused_without_writing(seeded, data)


def test_more_than_max_rows_is_refused_but_max_rows_is_fine(seeded: Seeded) -> None:
    rows = [f"P{i},p{i}@example.com" for i in range(MAX_ROWS + 1)]
    too_many = csv_bytes("name,email", *rows)
    assert len(too_many) <= MAX_BYTES
    result = preview(seeded, too_many)
    assert "more than 20,000" in result.file_error
    refused_without_writing(seeded, too_many)

    just_enough = csv_bytes("name,email", *rows[:MAX_ROWS])
    result = preview(seeded, just_enough)
    assert result.file_error == ""
    assert (result.total_rows, result.valid_rows, len(result.sample)) == (MAX_ROWS, MAX_ROWS, 50)
    assert result.can_import


@pytest.mark.parametrize("data", [b"", BOM, b"\r\n\r\n", b"  ,  \n"])
def test_an_empty_file_is_refused(seeded: Seeded, data: bytes) -> None:
    result = preview(seeded, data)
    assert result.file_error.startswith("The file is empty.")
    assert result.can_import is False
    refused_without_writing(seeded, data)


def test_a_header_without_rows_is_refused(seeded: Seeded) -> None:
    data = csv_bytes("name,email,department", "")
    result = preview(seeded, data)
    assert result.file_error.startswith("The file has no employees")
    refused_without_writing(seeded, data)


def test_a_line_csv_cannot_read_is_a_file_error_naming_the_line(seeded: Seeded) -> None:
    data = csv_bytes("name,email", "Ada,ada@example.com", '"Grace" Hopper,grace@example.com')
    result = preview(seeded, data)
    assert result.file_error.startswith("Line 3 could not be read as CSV")
    refused_without_writing(seeded, data)

    unterminated = csv_bytes("name,email", '"Ada,ada@example.com', "Grace,grace@example.com")
    assert preview(seeded, unterminated).file_error.startswith("Line 2 could not be read as CSV")


# --- Tenants -----------------------------------------------------------------------------------------------------


def test_another_accounts_employees_do_not_count_as_duplicates(seeded: Seeded) -> None:
    other = seeded.other_actor()
    add_employee(seeded, actor=other, name="Ada elsewhere", email="ada@example.com")
    data = csv_bytes("name,email", "Ada,ada@example.com")

    assert preview(seeded, data).can_import
    assert apply(seeded, data) == 1
    assert employees_of(seeded)["ada@example.com"].name == "Ada"
    assert employees_of(seeded, other)["ada@example.com"].name == "Ada elsewhere"

    assert preview(seeded, data, actor=other).errors[0].error == "An employee with this email already exists."


# --- Export ------------------------------------------------------------------------------------------------------


def open_seat(session: Session, lic: License, *, employee: Employee | None = None, child=None, at=NOW  # noqa: ANN001
              ) -> SeatAssignment:
    seat = SeatAssignment(account_id=lic.account_id, license_id=lic.id, employee_id=employee.id if employee else None,
                          child_account_id=child.id if child else None, assigned_at=at)
    session.add(seat)
    lic.seats_assigned += 1
    session.flush()
    return seat


def read_csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def test_export_of_an_account_without_seats_is_just_the_header(seeded: Seeded) -> None:
    with session_scope(seeded.engine, write=False) as session:
        text = export_assignments_csv(session, account_id=seeded.actor.account_id)
    assert read_csv(text) == [list(EXPORT_HEADER)]
    assert text.startswith("holder_type,name,email,department,product,plan,license,assigned_at")


def test_export_lists_every_open_seat_by_name_escapes_formulas_and_keeps_to_the_account(seeded: Seeded) -> None:
    plan = seeded.plans[next(iter(seeded.plans))]
    other_account_id = seeded.other_actor().account_id
    with session_scope(seeded.engine) as session:
        account = session.get(Account, seeded.actor.account_id)
        team = make_license(session, account, plan, quantity=3, reference_name="@Team SUM(A1)")
        solo = make_license(session, account, plan, quantity=1, reference_name="Solo")
        zoe = make_employee(session, account, name="Zoe Zimmer", email="zoe@example.com", department="Sales")
        evil = make_employee(session, account, name="=HYPERLINK(\"http://x\")", email="-x@example.com",
                             department="+Ops")
        left = make_employee(session, account, name="Aaron Left", email="left@example.com")
        make_employee(session, account, name="Aaron Seatless", email="seatless@example.com")
        child = make_child_account(session, account)
        child.name, child.contact_email = "Beta Subsidiary", "beta@example.com"
        open_seat(session, team, employee=zoe, at=NOW)
        open_seat(session, solo, employee=zoe, at=NOW + timedelta(hours=1))
        open_seat(session, team, employee=evil, at=NOW)
        open_seat(session, team, child=child, at=NOW)
        freed = SeatAssignment(account_id=account.id, license_id=solo.id, employee_id=left.id,
                               assigned_at=NOW - timedelta(days=2), unassigned_at=NOW - timedelta(days=1))
        session.add(freed)

        other_actor_account = session.get(Account, other_account_id)
        other_license = make_license(session, other_actor_account, plan, quantity=2, reference_name="Theirs")
        their_zoe = make_employee(session, other_actor_account, name="Zoe Zimmer", email="zoe@example.com")
        their_child = make_child_account(session, other_actor_account)
        open_seat(session, other_license, employee=their_zoe)
        open_seat(session, other_license, child=their_child)
        product_name = session.get(Product, plan.product_id).name

    with session_scope(seeded.engine, write=False) as session:
        rows = read_csv(export_assignments_csv(session, account_id=seeded.actor.account_id))
        their_rows = read_csv(export_assignments_csv(session, account_id=other_account_id))

    assert rows[0] == list(EXPORT_HEADER)
    assert rows[1:] == [
        ["employee", "'=HYPERLINK(\"http://x\")", "'-x@example.com", "'+Ops", product_name, plan.name,
         "'@Team SUM(A1)", "2026-11-29T12:00:00Z"],
        ["child_account", "Beta Subsidiary", "beta@example.com", "", product_name, plan.name, "'@Team SUM(A1)",
         "2026-11-29T12:00:00Z"],
        ["employee", "Zoe Zimmer", "zoe@example.com", "Sales", product_name, plan.name, "'@Team SUM(A1)",
         "2026-11-29T12:00:00Z"],
        ["employee", "Zoe Zimmer", "zoe@example.com", "Sales", product_name, plan.name, "Solo",
         "2026-11-29T13:00:00Z"],
    ]
    assert [row[6] for row in their_rows[1:]] == ["Theirs", "Theirs"]
    assert all(row[1] != "Beta Subsidiary" for row in their_rows)


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"])
def test_cells_that_would_start_a_formula_get_an_apostrophe(value: str) -> None:
    assert employee_import._safe_cell(value) == "'" + value
    assert employee_import._safe_cell("Ada " + value) == "Ada " + value
