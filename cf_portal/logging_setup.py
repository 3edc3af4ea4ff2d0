"""The app's log lines carry their time, level and logger, so an error reads as one ("... ERROR
cf_portal.services.purchase: ...") even when it comes without an exception, and the end-to-end tests can find it.

Only the `cf_portal` loggers are configured: Reflex, uvicorn and granian keep their own output.
"""

from __future__ import annotations

import logging
import sys

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: int = logging.INFO) -> None:
    """Send the `cf_portal` loggers' records to stderr in LOG_FORMAT; calling it again changes nothing."""
    logger = logging.getLogger("cf_portal")
    if any(getattr(handler, "cf_portal_handler", False) for handler in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.cf_portal_handler = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level)
