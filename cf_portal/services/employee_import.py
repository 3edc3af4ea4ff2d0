"""Employees from a CSV file (previewed first, imported all or nothing) and who holds what, as CSV.

The file: UTF-8 (a byte-order mark is fine), a header line naming the columns `name`, `email` and,
optionally, `department` (any order, any letter case), then one employee per line. Commas separate
the values; a file whose header line has semicolons and no commas (Excel in many European
languages) is read with semicolons. Blank lines are skipped. Line numbers in messages are the
file's own line numbers, the header being line 1.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import sqlalchemy as sa
from pydantic import BaseModel, Field, model_validator
from sqlmodel import Session, select

from cf_portal.db import session_scope
from cf_portal.models import ChildAccount, Employee, License, Plan, Product, SeatAssignment
from cf_portal.services import audit
from cf_portal.services.actors import Actor
from cf_portal.services.errors import DomainError
from cf_portal.services.roles import Permission
from cf_portal.services.validation import check_department, check_person_name, normalise_email

MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 20_000
SAMPLE_SIZE = 50
MAX_ERRORS_SHOWN = 200
MAX_SHOWN_LENGTH = 200  # a rejected value is cut to this length for display

REQUIRED_COLUMNS = ("name", "email")
OPTIONAL_COLUMNS = ("department",)
EXPECTED_COLUMNS_TEXT = "name, email and (optionally) department"

EXPORT_HEADER = ("holder_type", "name", "email", "department", "product", "plan", "license", "assigned_at")
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class ImportRow(BaseModel):
    line: int  # the line of the file the row starts on; the header is line 1
    name: str
    email: str  # lower-cased when valid, else as written
    department: str
    error: str = ""  # "" when the row can be imported


class ImportPreview(BaseModel):
    """What importing the file would do. `can_import` is derived from the other fields."""

    file_error: str = ""
    total_rows: int = 0
    valid_rows: int = 0
    sample: list[ImportRow] = Field(default_factory=list)  # the first rows, for display
    errors: list[ImportRow] = Field(default_factory=list)  # the first rows with an error
    error_count: int = 0  # every row with an error, including those not in `errors`
    can_import: bool = False

    @model_validator(mode="after")
    def _decide_can_import(self) -> ImportPreview:
        self.can_import = not self.file_error and self.error_count == 0 and self.valid_rows > 0
        return self


class _FileProblem(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _shown(text: str) -> str:
    return text if len(text) <= MAX_SHOWN_LENGTH else text[:MAX_SHOWN_LENGTH] + "…"


def _decode(data: bytes) -> str:
    if len(data) > MAX_BYTES:
        raise _FileProblem(f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB. "
                           "Split it into smaller files and import them one after the other.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _FileProblem(
            "The file is not UTF-8 text, so letters such as é or ü would come out wrong. "
            'In Excel, use File › Save As and choose "CSV UTF-8 (Comma delimited)", then upload that file.'
        ) from exc


def _delimiter(text: str) -> str:
    first_line = next((line for line in text.splitlines() if line.strip()), "")
    return ";" if ";" in first_line and "," not in first_line else ","


def _column_positions(header: list[str]) -> dict[str, int]:
    """Where each known column is. Header cells are matched trimmed and case-insensitively."""
    names = [cell.strip().lower() for cell in header]
    known = set(REQUIRED_COLUMNS) | set(OPTIONAL_COLUMNS)
    missing = [name for name in REQUIRED_COLUMNS if name not in names]
    unknown = [cell.strip() for cell, name in zip(header, names, strict=True) if name and name not in known]
    repeated = sorted({name for name in names if name and names.count(name) > 1})
    problems = []
    if missing:
        problems.append(f"The file has no {' or '.join(missing)} column.")
    if unknown:
        problems.append(f"Unknown column{'s' if len(unknown) > 1 else ''}: "
                        f"{', '.join(_shown(name) for name in unknown)}.")
    if repeated:
        problems.append(f"The {', '.join(repeated)} column appears more than once.")
    if problems:
        raise _FileProblem(" ".join(problems) + f" The first line must name the columns {EXPECTED_COLUMNS_TEXT},"
                                                " in any order.")
    return {name: position for position, name in enumerate(names) if name}


def _read_records(text: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and the data records, each with the line it starts on. Blank lines are skipped."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text), strict=True)
    header: list[str] | None = None
    records: list[tuple[int, list[str]]] = []
    lines_read = 0
    try:
        for fields in reader:
            start, lines_read = lines_read + 1, reader.line_num
            if not any(field.strip() for field in fields):
                continue
            if header is None:
                header = fields
                _column_positions(header)  # a wrong header is reported before anything else
                continue
            records.append((start, fields))
            if len(records) > MAX_ROWS:
                raise _FileProblem(f"The file has more than {MAX_ROWS:,} employees. "
                                   "Split it into smaller files and import them one after the other.")
    except csv.Error as exc:
        raise _FileProblem(f"Line {lines_read + 1} could not be read as CSV ({exc}). Check that quotes come in "
                           'pairs: a value with a comma or a quote in it is written like "Smith, Jo".') from exc
    if header is None:
        raise _FileProblem("The file is empty. The first line must name the columns "
                           f"{EXPECTED_COLUMNS_TEXT}; then add one employee per line.")
    if not records:
        raise _FileProblem("The file has no employees: add one employee per line below the header line.")
    return header, records


def _existing_emails(session: Session, *, account_id: int, emails: list[str]) -> set[str]:
    """Which of these emails employees of this account already have: one query for the whole file."""
    if not emails:
        return set()
    # At most MAX_ROWS bound values: within SQLite's (32,766) and PostgreSQL's (65,535) limits.
    query = select(Employee.email).where(Employee.account_id == account_id, Employee.email.in_(emails))
    return set(session.exec(query).all())


def _check_rows(session: Session, *, account_id: int, header: list[str],
                records: list[tuple[int, list[str]]]) -> list[ImportRow]:
    positions = _column_positions(header)
    width = len(header)
    rows: list[ImportRow] = []
    problems: list[list[str]] = []
    email_ok: list[bool] = []
    first_line_of: dict[str, int] = {}

    for line, fields in records:
        def value(column: str, fields: list[str] = fields) -> str:
            position = positions.get(column)
            return fields[position].strip() if position is not None and position < len(fields) else ""

        name, email, department = value("name"), value("email"), value("department")
        row_problems: list[str] = []
        valid_email = False
        if len(fields) != width:
            row_problems.append(
                f"This line has {len(fields)} values but the header line has {width}. Check for a missing or "
                'extra separator; a value with a comma in it needs quotes, like "Smith, Jo".')
        else:
            try:
                name = check_person_name(name)
            except DomainError as exc:
                row_problems.append(exc.message)
            try:
                email = normalise_email(email)
            except DomainError as exc:
                row_problems.append(exc.message)
            else:
                valid_email = True
                if email in first_line_of:
                    row_problems.append(f"Duplicate of line {first_line_of[email]}.")
                else:
                    first_line_of[email] = line
            try:
                department = check_department(department)
            except DomainError as exc:
                row_problems.append(exc.message)
        rows.append(ImportRow(line=line, name=name, email=email, department=department))
        problems.append(row_problems)
        email_ok.append(valid_email)

    existing = _existing_emails(session, account_id=account_id, emails=list(first_line_of))
    for row, row_problems, valid_email in zip(rows, problems, email_ok, strict=True):
        if valid_email and row.email in existing:
            row_problems.append("An employee with this email already exists.")
        if row_problems:
            row.error = " ".join(row_problems)
            row.name, row.email, row.department = _shown(row.name), _shown(row.email), _shown(row.department)
    return rows


def _parse(session: Session, *, account_id: int, data: bytes) -> tuple[ImportPreview, list[ImportRow]]:
    try:
        header, records = _read_records(_decode(data))
    except _FileProblem as problem:
        return ImportPreview(file_error=problem.message), []
    rows = _check_rows(session, account_id=account_id, header=header, records=records)
    bad = [row for row in rows if row.error]
    preview = ImportPreview(total_rows=len(rows), valid_rows=len(rows) - len(bad), sample=rows[:SAMPLE_SIZE],
                            errors=bad[:MAX_ERRORS_SHOWN], error_count=len(bad))
    return preview, rows


def preview_import(session: Session, *, account_id: int, data: bytes) -> ImportPreview:
    """What importing `data` into this account would do. Reads only; problems are in the preview."""
    preview, _ = _parse(session, account_id=account_id, data=data)
    return preview


def apply_import(session: Session, *, actor: Actor, data: bytes) -> int:
    """Add every employee in the file, in the caller's transaction, and return how many.

    The file is checked again here: an earlier preview is never trusted. All or nothing: any
    problem raises `DomainError(field="file")` before anything is written. If the insert itself
    hits a unique constraint (someone added one of these emails since the check), the inserts are
    rolled back to a savepoint and the IntegrityError is turned into a `DomainError(field="file")`;
    the caller's session stays usable and nothing of the import is left in it.
    """
    actor.require(Permission.MANAGE_SEATS)
    preview, rows = _parse(session, account_id=actor.account_id, data=data)
    if not preview.can_import:
        if preview.file_error:
            message = preview.file_error
        elif preview.error_count:
            first = preview.errors[0]
            rows_text = "1 row has an error" if preview.error_count == 1 else f"{preview.error_count} rows have errors"
            message = (f"Nothing was imported: {rows_text}. Line {first.line}: {first.error} "
                       "Fix the file and upload it again.")
        else:
            message = "The file has no employees to import."
        raise DomainError(message, field="file")

    employees = [Employee(account_id=actor.account_id, name=row.name, email=row.email, department=row.department)
                 for row in rows]
    try:
        with session.begin_nested():
            session.add_all(employees)
            audit.record(session, actor, "employees.imported", "employee", None, f"{len(employees)} employees from CSV")
            session.flush()
    except sa.exc.IntegrityError as exc:
        raise DomainError("Nothing was imported: an employee with one of these emails was added while the file "
                          "was being imported. Upload the file again to see which.", field="file") from exc
    return len(employees)


# --- Jobs: each opens its own session; plain arguments and results, so they can run in a worker process ---


class ImportOutcome(BaseModel):
    count: int = 0
    error: str = ""  # why nothing was imported


def preview_file(account_id: int, data: bytes) -> ImportPreview:
    with session_scope(write=False) as session:
        return preview_import(session, account_id=account_id, data=data)


def import_file(actor: Actor, data: bytes) -> ImportOutcome:
    try:
        with session_scope() as session:
            return ImportOutcome(count=apply_import(session, actor=actor, data=data))
    except DomainError as exc:
        return ImportOutcome(error=exc.message)


def export_file(account_id: int) -> str:
    with session_scope(write=False) as session:
        return export_assignments_csv(session, account_id=account_id)


# --- Export ----------------------------------------------------------------------------------------------------


def _safe_cell(value: str) -> str:
    """A cell a spreadsheet shows as text: one that would start a formula gets a leading apostrophe."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def export_assignments_csv(session: Session, *, account_id: int) -> str:
    """Every open seat of this account, one line each, ordered by holder name. Holders without seats are left out."""
    def open_seats(holder_columns: tuple, seat_of_holder: sa.ColumnElement[bool], holder_account: sa.Column) -> list:
        return session.execute(
            sa.select(*holder_columns, Product.name, Plan.name, License.reference_name, SeatAssignment.assigned_at)
            .join(SeatAssignment, seat_of_holder)
            .join(License, License.id == SeatAssignment.license_id)
            .join(Plan, Plan.id == License.plan_id)
            .join(Product, Product.id == Plan.product_id)
            .where(holder_account == account_id, SeatAssignment.account_id == account_id,
                   SeatAssignment.unassigned_at.is_(None), License.account_id == account_id)
        ).all()

    employee_seats = open_seats((Employee.name, Employee.email, Employee.department),
                                SeatAssignment.employee_id == Employee.id, Employee.account_id)
    child_seats = open_seats((ChildAccount.name, ChildAccount.contact_email, sa.literal("")),
                             SeatAssignment.child_account_id == ChildAccount.id, ChildAccount.account_id)

    lines = [("employee", *row) for row in employee_seats] + [("child_account", *row) for row in child_seats]
    lines.sort(key=lambda line: (line[1].casefold(), line[1], line[0], line[2], line[4], line[5], line[6], line[7]))

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EXPORT_HEADER)
    for holder_type, name, email, department, product, plan, license_name, assigned_at in lines:
        writer.writerow([_safe_cell(holder_type), _safe_cell(name), _safe_cell(email), _safe_cell(department),
                         _safe_cell(product), _safe_cell(plan), _safe_cell(license_name), _utc_text(assigned_at)])
    return out.getvalue()
