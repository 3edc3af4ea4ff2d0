"""The feedback form at the end of each Help panel ("Did this answer your question?")."""

from __future__ import annotations

import reflex as rx

from cf_portal.clock import now
from cf_portal.help_content import FEEDBACK_THANKS
from cf_portal.services.errors import DomainError
from cf_portal.services.help_feedback import record_feedback
from cf_portal.services.ids import client_text
from cf_portal.state.portal import PortalState

# Longer than any comment the service accepts (it says so), short enough to keep a hostile payload small.
MAX_FORM_TEXT = 4000


class HelpFeedbackState(PortalState):
    """No vars of its own: the form's fields stay in the browser until it is sent (and cleared once sent)."""

    @rx.event
    def send_feedback(self, form_data: dict):
        """Store the answer for the member of this tab, resolved again from the session (never from the form)."""
        page = client_text(form_data.get("page"), 40)
        answer = client_text(form_data.get("answer"), 3)
        comment = client_text(form_data.get("comment"), MAX_FORM_TEXT)
        try:
            self._write(lambda session, actor: record_feedback(session, actor=actor, page=page, answer=answer,
                                                               comment=comment, now=now()))
        except DomainError as exc:
            return rx.toast.error(exc.message)
        return rx.toast.success(FEEDBACK_THANKS)
