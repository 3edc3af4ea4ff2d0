"""Settings → API documentation: the catalog's product codes and examples with this portal's address, for any
signed-in member."""

from __future__ import annotations

import reflex as rx

from cf_portal.services import api_guide
from cf_portal.services.api_guide import ApiGuide
from cf_portal.state.portal import PortalState


class ApiDocsState(PortalState):
    guide: ApiGuide | None = None

    @rx.event
    def load(self):
        base_url = self.router.url.origin if self.router.url.netloc else ""
        self.guide = self._read(lambda session, actor: api_guide.guide(session, base_url=base_url))
