"""Ids from the browser: one parser, range-checked to what both databases store (BIGINT / INTEGER)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cf_portal.services.errors import NotFound
from cf_portal.services.ids import MAX_ID, client_text, is_id, parse_id
from cf_portal.services.seats import Holder


@given(st.integers(min_value=1, max_value=MAX_ID))
def test_every_id_in_range_is_read_as_a_number_and_as_text(number: int) -> None:
    assert parse_id(number) == parse_id(str(number)) == number


@given(st.integers(max_value=0) | st.integers(min_value=MAX_ID + 1))
def test_every_id_out_of_range_is_not_found(number: int) -> None:
    for value in (number, str(number)):
        with pytest.raises(NotFound, match="^That seat was not found.$"):
            parse_id(value, "That seat")


@pytest.mark.parametrize("value", ["", " 1", "1 ", "+1", "1e3", "0x10", "١٢", "1_000", "9" * 5000, 1.0, True, None,
                                   [1], {"id": 1}])
def test_anything_else_is_not_found(value: object) -> None:
    assert is_id(value) is False
    with pytest.raises(NotFound):
        parse_id(value)


def test_holder_keys_use_the_same_parser() -> None:
    assert Holder.parse("child:9223372036854775807").id == MAX_ID
    for key in ("employee:9223372036854775808", "employee:0", "child:-3", "employee:x", ":1", None, 5):
        with pytest.raises(NotFound):
            Holder.parse(key)


def test_client_text_is_cut_and_only_text() -> None:
    assert client_text("x" * 5000) == "x" * 1000
    assert client_text("abc", 2) == "ab"
    assert client_text(None) == client_text(12) == client_text(["a"]) == ""
