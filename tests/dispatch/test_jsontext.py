"""JSON text in the database and the console frames (core/jsontext.py): orjson, compact and
UTF-8, read back as the standard library reads it; what orjson will not write or read goes
to the standard library, so nothing stored or readable before becomes an error."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from sqlalchemy import text

from dispatch.core import jsontext
from dispatch.core.db import get_engine, session_scope
from dispatch.core.events import Event

VALUES: list[Any] = [
    {"kind": "meal", "township": "静海镇", "slot": "lunch", "provider_id": None, "ok": True},
    {"score": 0.1 + 0.2, "tiny": 1e-05, "big": 2**63 - 1, "neg": -(2**63), "nested": [[], {}, [1, "二"]]},
    {"quote": 'a "b" \\ c', "controls": "tab\tnew\nline\x00\x1f", "emoji": "老人 🍚", "sep": "\u2028"},
    [],
    "plain",
    12,
]


def test_what_it_writes_reads_back_as_the_standard_library_reads_it() -> None:
    for value in VALUES:
        written = jsontext.dumps(value)
        assert json.loads(written) == value, written
        assert jsontext.loads(written) == value
        if not (isinstance(value, dict) and "score" in value):  # floats: 1e-5 where Python writes 1e-05
            # Compact, with Chinese as characters: the standard library's text for the frames.
            assert written == json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    assert jsontext.dumps({"township": "静海镇", "n": 1}) == '{"township":"静海镇","n":1}'


def test_keys_that_are_not_strings_are_written_as_the_standard_library_writes_them() -> None:
    value = {1: "a", 2.5: "b", False: "c", None: "d"}
    assert json.loads(jsontext.dumps(value)) == json.loads(json.dumps(value))


def test_what_orjson_refuses_to_write_is_written_by_the_standard_library() -> None:
    huge = {"n": 2**70}
    assert jsontext.loads(jsontext.dumps(huge)) == huge  # exact, not a float
    lone = {"s": "\ud800"}
    written = jsontext.dumps(lone)
    assert written.isascii() and json.loads(written) == lone  # escaped: valid UTF-8 to store
    # NaN and the infinities are not JSON: null, where the standard library wrote NaN.
    assert json.loads(jsontext.dumps({"x": math.nan, "y": math.inf})) == {"x": None, "y": None}
    with pytest.raises(TypeError):  # a set is not JSON either way
        jsontext.dumps({"s": {1, 2}})


def test_text_the_standard_library_wrote_stays_readable() -> None:
    old = json.dumps({"a": math.nan, "b": math.inf, "c": "静海", "d": 2**70})  # spaced, escaped, NaN
    read = jsontext.loads(old)
    assert math.isnan(read["a"]) and read["b"] == math.inf and read["c"] == "静海" and read["d"] == 2**70
    assert jsontext.loads(b'{"a": 1}') == {"a": 1}
    with pytest.raises(ValueError):  # text that is not JSON still fails
        jsontext.loads("{not json")


def test_the_platforms_engine_writes_and_reads_json_columns_with_it() -> None:
    with session_scope() as session:
        event = Event(type="request.created", data={"township": "静海镇", "n": 1})
        session.add(event)
        session.flush()
        seq = event.seq
    with get_engine().connect() as conn:
        stored = conn.execute(
            text("SELECT CAST(data AS TEXT) FROM event WHERE seq = :s"), {"s": seq}
        ).scalar()
    if get_engine().dialect.name != "sqlite":  # PostgreSQL stores JSON in its own form,
        assert json.loads(stored) == {"township": "静海镇", "n": 1}
        return  # and never took NaN or Infinity in a JSON column
    assert stored == '{"township":"静海镇","n":1}'
    with get_engine().begin() as conn:  # a row written before: the standard library's spaced text
        conn.execute(
            text("UPDATE event SET data = :d WHERE seq = :s"),
            {"d": json.dumps({"township": "静海镇", "gap": math.inf}), "s": seq},
        )
    with session_scope(write=False) as session:
        data = session.get(Event, seq).data  # type: ignore[union-attr]
    assert data == {"township": "静海镇", "gap": math.inf}
