"""The Help panel of a screen: a "Help" button that opens the screen's help (cf_portal/help_content.py) in a panel
on the right (the whole width on a phone), ending with "Did this answer your question?".

The panel is a Radix dialog: the button says what it opens (aria-haspopup, aria-expanded, aria-controls), focus
moves into the panel when it opens and back to the button when it closes, Escape or "Close help" closes it."""

from __future__ import annotations

import reflex as rx

from cf_portal.components.common import contact_href
from cf_portal.components.forms import labelled, labelled_group
from cf_portal.help_content import FEEDBACK_QUESTION, HelpSection, HelpTopic
from cf_portal.services.help_feedback import HELP_COMMENT_MAX
from cf_portal.state.help import HelpFeedbackState


def help_section(section: HelpSection) -> rx.Component:
    return rx.vstack(
        rx.heading(section.heading, as_="h2", size="3"),
        *[rx.text(paragraph, size="2") for paragraph in section.paragraphs],
        *([rx.el.ol(*[rx.el.li(rx.text(step, size="2")) for step in section.steps], class_name="help-steps")]
          if section.steps else []),
        spacing="2",
        width="100%",
    )


def answer_option(value: str, label: str) -> rx.Component:
    return rx.el.label(
        rx.el.input(type="radio", name="answer", value=value, required=True),
        rx.text(label, size="2"),
        class_name="pm-option answer-option",
    )


def feedback_form(page: str) -> rx.Component:
    comment_id = f"help-{page}-comment"
    return rx.form(
        rx.vstack(
            rx.el.input(type="hidden", name="page", value=page),
            labelled_group(FEEDBACK_QUESTION,
                           rx.hstack(answer_option("yes", "Yes"), answer_option("no", "No"), spacing="3"),
                           group_id=f"help-{page}-answer"),
            labelled(
                "Comment (optional)",
                rx.text_area(id=comment_id, name="comment", max_length=HELP_COMMENT_MAX, rows="3", size="3",
                             resize="vertical"),
                field_id=comment_id,
                hint=f"Up to {HELP_COMMENT_MAX:,} characters. Please leave out passwords and card numbers.",
            ),
            rx.button("Send feedback", type="submit", size="3", variant="soft"),
            spacing="3",
            width="100%",
            align="start",
        ),
        on_submit=HelpFeedbackState.send_feedback,
        reset_on_submit=True,
        width="100%",
    )


def help_panel(topic: HelpTopic) -> rx.Component:
    """The screen's "Help" button and the panel it opens."""
    return rx.dialog.root(
        rx.dialog.trigger(
            rx.button(rx.icon("circle-help", aria_hidden="true"), "Help", variant="soft", size="3", type="button"),
        ),
        rx.dialog.content(
            rx.flex(
                rx.dialog.title(topic.title, margin="0"),
                rx.dialog.close(rx.button(rx.icon("x", aria_hidden="true"), "Close help", variant="soft",
                                          color_scheme="gray", size="3", type="button")),
                justify="between", align="center", gap="12px", wrap="wrap",
            ),
            rx.dialog.description(topic.summary, size="2", margin_top="12px"),
            rx.vstack(
                *[help_section(section) for section in topic.sections],
                rx.separator(size="4"),
                feedback_form(topic.page),
                rx.text("Still need help? ", rx.link("Contact us", href=contact_href(),
                                                     underline="always"), size="2"),
                spacing="5",
                width="100%",
                margin_top="16px",
            ),
            class_name="help-panel",
        ),
    )
