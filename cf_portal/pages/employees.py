"""The Employees section: who holds which license, and the actions to change it."""

from __future__ import annotations

import reflex as rx

from cf_portal import help_content, routes
from cf_portal.components.common import empty_state, loading_rows
from cf_portal.components.dialogs import confirm_dialog
from cf_portal.components.forms import dialog_buttons, field_error, labelled, native_select
from cf_portal.components.history import history_list
from cf_portal.components.shell import page_shell
from cf_portal.components.tables import responsive_table
from cf_portal.services.employees import CHILD_DEPARTMENT, HeldSeat, HolderRow
from cf_portal.state.employees import AssignState, ImportState, MoveState, PersonFormState
from cf_portal.state.employees import EmployeesState as S

UPLOAD_ID = "employees_csv"


# --- toolbar and grid ---------------------------------------------------------------------------------------


def toolbar() -> rx.Component:
    return rx.flex(
        rx.box(
            labelled("Search", rx.input(
                id="grid_search", value=S.search, on_change=S.set_search, placeholder="Name or email",
                type="search", size="3", debounce_timeout=250,
            ), field_id="grid_search"),
            flex="2", min_width="200px",
        ),
        rx.box(labelled("Department", native_select(
            rx.fragment(
                rx.el.option("All departments", value=""),
                rx.foreach(S.department_options, lambda d: rx.el.option(d, value=d)),
                rx.el.option("Child accounts", value=CHILD_DEPARTMENT),
            ),
            field_id="grid_department", value=S.department, on_change=S.set_department,
        ), field_id="grid_department"), flex="1", min_width="160px"),
        rx.box(labelled("Product", native_select(
            rx.fragment(
                rx.el.option("All products", value=""),
                rx.foreach(S.product_options, lambda p: rx.el.option(p[1], value=p[0])),
            ),
            field_id="grid_product", value=S.product_id, on_change=S.set_product_filter,
        ), field_id="grid_product"), flex="1", min_width="160px"),
        rx.vstack(
            rx.checkbox("Has no license", checked=S.without_license, on_change=S.set_without_license, size="3"),
            rx.checkbox("Show deactivated", checked=S.show_inactive, on_change=S.set_show_inactive, size="3"),
            spacing="1", justify="end",
        ),
        gap="12px", wrap="wrap", align="end", width="100%",
    )


def sort_header(label: str, column: str) -> rx.Component:
    active = S.sort == column
    return rx.table.column_header_cell(
        rx.el.button(
            label,
            rx.cond(active, rx.cond(S.descending, rx.icon("arrow-down", size=14, aria_hidden="true"),
                                    rx.icon("arrow-up", size=14, aria_hidden="true"))),
            on_click=S.sort_by(column), class_name="sort-button", type="button",
        ),
        aria_sort=rx.cond(active, rx.cond(S.descending, "descending", "ascending"), "none"),
    )


def seat_badges(row: HolderRow) -> rx.Component:
    return rx.cond(
        row.seats.length() > 0,
        rx.flex(rx.foreach(row.seats, lambda seat: rx.badge(seat.label, variant="soft", high_contrast=True, size="2")),
                gap="4px", wrap="wrap"),
        rx.text("No license", size="2", color_scheme="gray"),
    )


def row_checkbox(row: HolderRow) -> rx.Component:
    return rx.checkbox(checked=S.selected.contains(row.key), on_change=lambda c: S.toggle_selected(row.key, c),
                       aria_label=f"Select {row.name}", size="3")


def name_cell(row: HolderRow) -> rx.Component:
    return rx.hstack(
        rx.el.button(row.name, on_click=S.open_details(row.key), class_name="link-button", type="button",
                     aria_label=f"Details of {row.name}"),
        rx.cond(~row.active, rx.badge("Deactivated", color_scheme="gray", variant="soft", high_contrast=True)),
        spacing="2", align="center", wrap="wrap",
    )


def assign_button(row: HolderRow) -> rx.Component:
    return rx.cond(S.can_manage_seats,
                   rx.button("Assign", variant="soft", size="2", on_click=AssignState.open_for([row.key]),
                             aria_label=f"Assign a license to {row.name}", disabled=~row.active))


def grid_row(row: HolderRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(row_checkbox(row)),
        rx.table.row_header_cell(name_cell(row)),
        rx.table.cell(row.email),
        rx.table.cell(row.department),
        rx.table.cell(seat_badges(row)),
        rx.table.cell(assign_button(row)),
    )


def grid_card(row: HolderRow) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(row_checkbox(row), name_cell(row), align="center", spacing="3"),
            rx.text(row.email, size="2", color_scheme="gray", word_break="break-all"),
            rx.text(row.department, size="2"),
            seat_badges(row),
            assign_button(row),
            spacing="2", width="100%",
        ),
        width="100%",
    )


def grid() -> rx.Component:
    return responsive_table(
        "Employees and child accounts",
        [
            rx.table.column_header_cell(rx.checkbox(checked=S.page_all_selected, on_change=S.select_page,
                                                    aria_label="Select everyone on this page", size="3")),
            sort_header("Name", "name"),
            sort_header("Email", "email"),
            sort_header("Department", "department"),
            rx.table.column_header_cell("Licenses"),
            rx.table.column_header_cell(rx.el.span("Actions", class_name="visually-hidden")),
        ],
        S.rows, grid_row, grid_card,
    )


def pager() -> rx.Component:
    return rx.hstack(
        rx.text(S.range_text, size="2", color_scheme="gray", aria_live="polite"),
        rx.hstack(
            rx.button(rx.icon("chevron-left", aria_hidden="true"), "Previous", variant="soft", size="3",
                      disabled=S.page <= 1, on_click=S.previous_page),
            rx.text(S.page_text, size="2"),
            rx.button("Next", rx.icon("chevron-right", aria_hidden="true"), variant="soft", size="3",
                      disabled=~S.has_next, on_click=S.next_page),
            spacing="2", align="center",
        ),
        justify="between", align="center", width="100%", wrap="wrap", spacing="3",
    )


def selection_bar() -> rx.Component:
    return rx.cond(
        S.selected_count > 0,
        rx.callout.root(
            rx.callout.text(
                rx.hstack(
                    rx.text(S.selected_count, " selected", weight="medium"),
                    rx.cond(S.can_manage_seats,
                            rx.button("Assign license", size="2", on_click=AssignState.open_for(S.selected))),
                    rx.button("Clear selection", size="2", variant="soft", color_scheme="gray",
                              on_click=S.clear_selection),
                    spacing="3", align="center", wrap="wrap",
                ),
            ),
            width="100%",
            high_contrast=True,
        ),
    )


# --- dialogs --------------------------------------------------------------------------------------------------


def assign_dialog() -> rx.Component:
    a = AssignState
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title("Assign a license"),
            rx.dialog.description(
                rx.cond(a.targets.length() == 1, "Give one seat to the selected person or child account.",
                        f"Give one seat each to {a.targets.length()} selected people or child accounts."),
            ),
            rx.cond(
                S.licenses.length() > 0,
                rx.vstack(
                    labelled("License", native_select(
                        rx.foreach(S.licenses, lambda lic: rx.el.option(lic.label, value=lic.id.to_string())),
                        field_id="assign_license", value=a.license_id, on_change=a.set_license,
                        invalid=rx.cond(a.error != "", "true", "false"),
                    ), field_id="assign_license"),
                    field_error(a.error, "assign_license-error"),
                    rx.cond(a.buy_more_plan_id > 0,
                            rx.button(rx.link("Add License", href=a.buy_more_url, underline="none"), as_child=True,
                                      variant="soft", size="3")),
                    spacing="2", width="100%", margin_top="12px",
                ),
                rx.callout("There are no licenses to assign yet.", icon="info", margin_top="12px", high_contrast=True),
            ),
            rx.box(
                dialog_buttons(rx.cond(S.licenses.length() > 0, rx.button("Assign", size="3", on_click=a.assign),
                                       rx.button(rx.link("Add License", href=routes.ADD_LICENSE, underline="none"),
                                                 as_child=True, size="3"))),
                margin_top="16px", width="100%",
            ),
            max_width="520px",
        ),
        open=a.is_open, on_open_change=a.set_open,
    )


def held_seat(seat: HeldSeat) -> rx.Component:
    return rx.hstack(
        rx.text(seat.label, size="2", flex="1"),
        rx.cond(S.can_manage_seats, rx.hstack(
            rx.button("Move", size="2", variant="soft", on_click=MoveState.open_for(seat.assignment_id, seat.label),
                      aria_label=f"Move {seat.label}"),
            rx.button("Unassign", size="2", variant="soft", color_scheme="red",
                      on_click=S.ask_unassign(seat.assignment_id, seat.label), aria_label=f"Unassign {seat.label}"),
            spacing="2")),
        align="center", width="100%", spacing="2", wrap="wrap",
    )


def details_dialog() -> rx.Component:
    d = S.details
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title(d.name),
            rx.dialog.description(rx.text(d.email, " · ", d.department,
                                          rx.cond(~d.active, " · Deactivated", ""))),
            rx.vstack(
                rx.heading("Licenses held", as_="h3", size="3"),
                rx.cond(d.seats.length() > 0, rx.vstack(rx.foreach(d.seats, held_seat), width="100%", spacing="2"),
                        rx.text("No license yet.", size="2", color_scheme="gray")),
                rx.cond(d.active & S.can_manage_seats,
                        rx.button("Assign a license", size="2", on_click=AssignState.open_for([d.key]))),
                rx.heading("History", as_="h3", size="3", margin_top="8px"),
                history_list(S.history),
                rx.hstack(
                    rx.cond(S.can_manage_seats,
                            rx.button("Edit", variant="soft", size="3", on_click=PersonFormState.open_for(d.kind, d.key))),
                    rx.cond((d.kind == "employee") & S.can_manage_seats,
                            rx.cond(d.active,
                                    rx.button("Deactivate", variant="soft", color_scheme="red", size="3",
                                              on_click=S.ask_deactivate),
                                    rx.button("Reactivate", variant="soft", size="3", on_click=S.set_active(True)))),
                    rx.dialog.close(rx.button("Close", variant="soft", color_scheme="gray", size="3")),
                    spacing="3", justify="end", width="100%", wrap="wrap", margin_top="8px",
                ),
                spacing="2", width="100%", margin_top="12px",
            ),
            max_width="600px",
        ),
        open=S.details_open, on_open_change=S.set_details_open,
    )


def move_option(row: HolderRow) -> rx.Component:
    return rx.el.label(
        rx.el.input(type="radio", name="move_to", value=row.key, checked=MoveState.to == row.key,
                    on_change=MoveState.set_to(row.key)),
        rx.text(row.name, " · ", row.department, size="2"),
        class_name="pm-option",
    )


def move_dialog() -> rx.Component:
    m = MoveState
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title("Move a seat"),
            rx.dialog.description(rx.text("Give ", rx.text.strong(m.seat_label), " to someone else in one step.")),
            rx.vstack(
                labelled("Move to", rx.input(id="move_search", value=m.query, on_change=m.set_query,
                                             placeholder="Search by name or email", size="3", type="search"),
                         field_id="move_search"),
                rx.el.fieldset(
                    rx.el.legend("Results", class_name="visually-hidden"),
                    rx.vstack(rx.foreach(m.matches, move_option), spacing="2", width="100%"),
                    style={"border": "none", "padding": "0", "margin": "0", "min_width": "0"},
                ),
                field_error(m.error, "move-error"),
                dialog_buttons(rx.button("Move", size="3", on_click=m.move)),
                spacing="3", width="100%", margin_top="12px",
            ),
            max_width="520px",
        ),
        open=m.is_open, on_open_change=m.set_open,
    )


def unassign_dialog() -> rx.Component:
    return confirm_dialog("Unassign this seat?", S.unassign_text, action="Unassign", on_confirm=S.unassign,
                          open=S.unassign_seat_id > 0, on_cancel=S.cancel_unassign)


def deactivate_dialog() -> rx.Component:
    return confirm_dialog(
        rx.text("Deactivate ", S.details.name, "?"),
        rx.cond(S.deactivate_seats > 0,
                rx.text("They hold ", S.deactivate_seats, " seat(s); deactivating frees them at once."),
                rx.text("They hold no seats. You can reactivate them later.")),
        action="Deactivate", on_confirm=S.set_active(False), open=S.deactivate_open,
        on_open_change=S.set_deactivate_open,
    )


def person_form_dialog() -> rx.Component:
    f = PersonFormState
    is_child = f.kind == "child"
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title(rx.cond(f.holder_id > 0, rx.cond(is_child, "Edit child account", "Edit employee"),
                                    rx.cond(is_child, "Add child account", "Add employee"))),
            rx.dialog.description(rx.cond(is_child, "A child account can hold a seat as a whole.",
                                          "Employees can hold one seat of each license.")),
            rx.vstack(
                labelled("Name", rx.input(id="person_name", value=f.name, on_change=f.set_name, size="3",
                                          aria_invalid=rx.cond(f.name_error != "", "true", "false"),
                                          aria_describedby="person_name-error"),
                         field_id="person_name", error=f.name_error),
                labelled(rx.cond(is_child, "Contact email", "Email"),
                         rx.input(id="person_email", value=f.email, on_change=f.set_email, size="3",
                                  type="email", aria_invalid=rx.cond(f.email_error != "", "true", "false"),
                                  aria_describedby="person_email-error"),
                         field_id="person_email", error=f.email_error),
                rx.cond(~is_child, labelled("Department", rx.input(
                    id="person_department", value=f.department_name, on_change=f.set_department_name, size="3"),
                    field_id="person_department")),
                field_error(f.error, "person-form-error"),
                dialog_buttons(rx.button("Save", size="3", on_click=f.save)),
                spacing="3", width="100%", margin_top="12px",
            ),
            max_width="480px",
        ),
        open=f.is_open, on_open_change=f.set_open,
    )


def import_error_row(row) -> rx.Component:  # noqa: ANN001
    return rx.table.row(rx.table.cell(row.line), rx.table.cell(row.email), rx.table.cell(row.error))


def csv_drop_zone() -> rx.Component:
    zone = rx.upload.root(
        rx.vstack(
            rx.icon("upload", aria_hidden="true"),
            rx.text("Drop a CSV file here, or choose one"),
            rx.button("Choose CSV file", size="3", variant="soft", type="button"),
            align="center", spacing="2",
        ),
        id=UPLOAD_ID, accept={"text/csv": [".csv"]}, max_files=1, multiple=False,
        on_drop=ImportState.preview_csv(rx.upload_files(upload_id=UPLOAD_ID)),
        border=f"1px dashed {rx.color('gray', 8)}", border_radius="8px", padding="16px", width="100%",
    )
    hide_from_screen_readers(zone, tag="input")
    return zone


def hide_from_screen_readers(component: rx.Component, *, tag: str) -> None:
    """The drop zone's own file input is only visually hidden (and out of the tab order): screen readers
    announced it as an unnamed "Choose File" button beside "Choose CSV file", which opens the same picker."""
    for child in component.children:
        if getattr(child, "tag", None) == tag:
            child.custom_attrs["aria-hidden"] = "true"
        hide_from_screen_readers(child, tag=tag)


def import_dialog() -> rx.Component:
    i = ImportState
    p = i.preview
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title("Import employees from CSV"),
            rx.dialog.description("A UTF-8 CSV file with the columns name, email and department. "
                                  "Nothing is imported until the whole file is correct."),
            rx.vstack(
                csv_drop_zone(),
                rx.cond(i.file_name != "", rx.text("File: ", i.file_name, size="2")),
                field_error(p.file_error, "import-file-error"),
                rx.cond(
                    (p.file_error == "") & (p.total_rows > 0),
                    rx.text(p.total_rows, " rows: ", p.valid_rows, " ready, ", p.error_count, " with errors.",
                            size="2", role="status"),
                ),
                rx.cond(
                    p.errors.length() > 0,
                    rx.scroll_area(
                        rx.table.root(
                            rx.el.caption("Rows with errors", class_name="visually-hidden"),
                            rx.table.header(rx.table.row(rx.table.column_header_cell("Line"),
                                                         rx.table.column_header_cell("Email"),
                                                         rx.table.column_header_cell("Problem"))),
                            rx.table.body(rx.foreach(p.errors, import_error_row)),
                            size="1",
                        ),
                        max_height="240px", type="auto",
                    ),
                ),
                dialog_buttons(rx.button(i.import_label, size="3", disabled=~p.can_import, loading=i.importing,
                                         on_click=i.import_csv)),
                spacing="3", width="100%", margin_top="12px",
            ),
            max_width="640px",
        ),
        open=i.is_open, on_open_change=i.set_open,
    )


def actions() -> rx.Component:
    return rx.flex(
        rx.cond(S.can_manage_seats, rx.fragment(
            rx.button(rx.icon("user-plus", aria_hidden="true"), "Add employee", size="3",
                      on_click=PersonFormState.open_for("employee", "")),
            rx.button(rx.icon("building-2", aria_hidden="true"), "Add child account", size="3", variant="soft",
                      on_click=PersonFormState.open_for("child", "")),
            rx.button(rx.icon("upload", aria_hidden="true"), "Import CSV", size="3", variant="soft",
                      on_click=ImportState.set_open(True)),
        )),
        rx.button(rx.icon("download", aria_hidden="true"), "Export CSV", size="3", variant="soft",
                  on_click=S.export_csv),
        gap="8px", wrap="wrap",
    )


def license_filter_note() -> rx.Component:
    """Shown when Manage license sent the member here (?license=<id>): only that license's holders are listed."""
    return rx.cond(
        S.license_filter != "",
        rx.hstack(
            rx.text("Showing who holds a seat of ",
                    rx.cond(S.license_filter_name != "", rx.text.strong(S.license_filter_name), "that license"), ".",
                    size="2"),
            rx.button("Show everyone", size="2", variant="soft", on_click=S.clear_license_filter),
            align="center", spacing="3", wrap="wrap", role="status",
        ),
    )


def employees_page() -> rx.Component:
    return page_shell(
        rx.vstack(
            rx.text("Control who holds which license: assign, move or free seats for employees and child accounts.",
                    color_scheme="gray"),
            actions(),
            toolbar(),
            license_filter_note(),
            selection_bar(),
            rx.cond(
                S.loaded,
                rx.cond(S.total > 0, rx.fragment(grid(), pager()),
                        empty_state("users", "Nobody matches", "Try another search or filter, or add an employee.")),
                loading_rows(),
            ),
            spacing="4", width="100%",
        ),
        assign_dialog(), details_dialog(), move_dialog(), unassign_dialog(), deactivate_dialog(),
        person_form_dialog(), import_dialog(),
        title="Employees",
        help_topic=help_content.EMPLOYEES,
    )
