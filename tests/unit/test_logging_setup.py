"""The app's log lines say their level, so an error logged without an exception is still found by the e2e check."""

from __future__ import annotations

import logging

import pytest

from cf_portal.logging_setup import configure_logging
from tests.support.app import SERVER_ERROR_MARKERS


@pytest.fixture
def cf_logger() -> logging.Logger:
    logger = logging.getLogger("cf_portal")
    handlers, level = list(logger.handlers), logger.level
    logger.handlers[:] = []  # as in a fresh app process (importing the app module earlier has added one)
    yield logger
    logger.handlers[:], logger.level = handlers, level


def test_an_error_without_an_exception_is_a_line_the_e2e_check_finds(cf_logger: logging.Logger,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging()
    configure_logging()  # twice (the app module imported again): still one line per record
    logging.getLogger("cf_portal.services.purchase").error("purchase %s: the payment needs a refund", 7)
    logging.getLogger("cf_portal.services.purchase").info("purchase %s: confirmed", 8)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2, lines
    assert " ERROR cf_portal.services.purchase: purchase 7: the payment needs a refund" in lines[0]
    assert any(marker in lines[0] for marker in SERVER_ERROR_MARKERS)
    assert " INFO cf_portal.services.purchase: purchase 8: confirmed" in lines[1]
    assert not any(marker in lines[1] for marker in SERVER_ERROR_MARKERS)
