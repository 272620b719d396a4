"""validate's canonical forms of SQLite values (the contracts' conversion rules,
implemented independently of the merge)."""

import math
import struct

import pytest

from mailmig.sqlite_source import SqliteText
from mailmig.validate import (
    Reject,
    Repair,
    canon_flag,
    canon_float,
    canon_int,
    canon_json,
    canon_repaired,
    canon_text,
    canon_timestamp,
    canon_timestamp_required,
    jsonb_text,
    pg_json_string,
    pg_numeric_text,
    replace_bad_bytes,
    row_digest,
)


def T(text) -> SqliteText:
    return SqliteText(text.encode() if isinstance(text, str) else text)


@pytest.mark.parametrize("value, expected", [
    (T("2023-05-06 07:08:09"), "2023-05-06T07:08:09.000000Z"),
    (T("2023-05-06T07:08:09"), "2023-05-06T07:08:09.000000Z"),
    (T("2023-05-06T07:08:09Z"), "2023-05-06T07:08:09.000000Z"),
    (T("2023-05-06 07:08:09.5"), "2023-05-06T07:08:09.500000Z"),
    (T("2023-05-06T07:08:09.123Z"), "2023-05-06T07:08:09.123000Z"),
    (T("2023-05-06 07:08:09.123456"), "2023-05-06T07:08:09.123456Z"),
    (T("2023-05-06T07:08:09+02:00"), "2023-05-06T05:08:09.000000Z"),
    (T("2023-05-06T07:08:09+0200"), "2023-05-06T05:08:09.000000Z"),
    (T("2023-05-06T23:30:00-01:00"), "2023-05-07T00:30:00.000000Z"),  # crosses the day
    (T("2023-05-31T23:30:00-01:00"), "2023-06-01T00:30:00.000000Z"),  # and the month
    (T("2023-05-06"), "2023-05-06T00:00:00.000000Z"),
    (1627303906, "2021-07-26T12:51:46.000000Z"),
    (1627303906122, "2021-07-26T12:51:46.122000Z"),
    (1627303906.25, "2021-07-26T12:51:46.250000Z"),
    (T("1627303906"), "2021-07-26T12:51:46.000000Z"),
    (0, "1970-01-01T00:00:00.000000Z"),
])
def test_timestamp_forms(value, expected):
    assert canon_timestamp(value) == expected.encode()
    assert canon_timestamp_required(value) == expected.encode()


@pytest.mark.parametrize("value", [
    T("yesterday"), T("0000-00-00 00:00:00"), T("1969-12-31 23:59:59"), T("2100-01-01 00:00:00"),
    T("2023-02-30"), T("2023-05-06 24:00:00"), T("2023-05-06 07:08"), T("2023-05-06 07:08:09.1234567"),
    T("2023-05-06T07:08:09+25:00"), T(" 2023-05-06"), T("٢٠٢٣-05-06"), T(b"2023-05-06\xff"),
    b"2023-05-06", -5, 4102444800, 4102444800000, float("inf"),
])
def test_unparseable_timestamps_are_repaired_to_null_or_rejected(value):
    assert isinstance(canon_timestamp(value), Repair)
    assert canon_timestamp(value).options == {"timestamp_unreadable_null": None}
    assert isinstance(canon_timestamp_required(value), Reject)
    assert canon_timestamp_required(value).sqlstate == "22007"


def test_null_timestamps():
    assert canon_timestamp(None) is None
    assert canon_timestamp_required(None).sqlstate == "23502"


@pytest.mark.parametrize("value, expected", [
    (0, b"f"), (1, b"t"), (T("0"), b"f"), (T("true"), b"t"), (T(" Yes "), b"t"), (T("OFF"), b"f"),
    (T("n"), b"f"), (T("on"), b"t"), (None, None),
])
def test_flags_loaded_as_is(value, expected):
    assert canon_flag(value) == expected


@pytest.mark.parametrize("value, rule, repaired", [
    (2, "flag_nonzero_true", b"t"), (-1, "flag_nonzero_true", b"t"),
    (T("maybe"), "flag_unreadable_null", None), (1.0, "flag_unreadable_null", None),
    (b"\x01", "flag_unreadable_null", None), (T(b"\xff"), "flag_unreadable_null", None),
])
def test_flags_repaired(value, rule, repaired):
    out = canon_flag(value)
    assert isinstance(out, Repair) and out.options == {rule: repaired}


def test_integers():
    assert canon_int(3000000000) == b"3000000000"
    assert canon_int(12.0) == b"12"
    assert canon_int(T("4096")) == b"4096"
    assert canon_int(T("-7")) == b"-7"
    assert canon_int(None) is None
    for bad in (12.5, T("big"), T("1e3"), 2**63, T(str(2**63)), b"\x01", float("inf")):
        assert canon_int(bad).options == {"number_unreadable_null": None}, bad


def test_spam_score_by_exact_bits():
    assert canon_float(0.1) == struct.pack(">d", 0.1).hex().encode()
    assert canon_float(0.1) != canon_float(math.nextafter(0.1, 1))  # one ulp apart differs
    assert canon_float(3) == canon_float(3.0)
    assert canon_float(T("0.75")) == canon_float(0.75)
    assert canon_float(float("inf")) == b"7ff0000000000000"
    # a zero's sign is not kept: the typed JSON of -0.0 reaches jsonb, whose numbers have no
    # -0 (and SQLite's REAL columns store -0.0 as 0.0 anyway); NaN is one NaN
    assert canon_float(-0.0) == canon_float(0.0) == b"0000000000000000"
    assert canon_float(struct.unpack(">d", bytes.fromhex("7ff8000000000001"))[0]) == b"7ff8000000000000"
    for bad in (T("high"), T("0,75"), T("1e999"), b"\x00"):
        assert canon_float(bad).options == {"number_unreadable_null": None}, bad


def test_text_byte_for_byte_and_repairs():
    assert canon_text(T("héllo")) == "héllo".encode()
    assert canon_text(T("")) == b""  # '' is not NULL
    assert canon_text(None) is None
    assert canon_text(T(b"a\xffb")).options == {"text_bytes_replaced": "a\ufffdb".encode()}
    assert canon_text(T(b"a\x00b")).options == {"text_bytes_replaced": "a\ufffdb".encode()}
    assert canon_text(b"\x00\xff").options == {"blob_as_text": "\ufffd\ufffd".encode()}
    assert canon_text(12) == b"12"


def test_each_bad_byte_becomes_one_replacement_character():
    assert replace_bad_bytes(b"\xe2\x82A") == "\ufffd\ufffdA"  # a cut 3-byte sequence: two bytes
    assert replace_bad_bytes(b"\xed\xa0\x80") == "\ufffd" * 3  # a UTF-16 surrogate
    assert replace_bad_bytes(b"\xc0\xaf") == "\ufffd\ufffd"  # overlong
    assert replace_bad_bytes("ok €".encode()) == "ok €"


def test_json_by_meaning():
    assert canon_json(T('{"b": 1, "a": {"y": 1, "x": 2}}')) == b'{"a": {"x": 2, "y": 1}, "b": 1}'
    assert canon_json(T('{"a":1,"a":2}')) == b'{"a": 2}'
    assert canon_json(T('{"bb":1,"a":2}')) == b'{"a": 2, "bb": 1}'  # shorter keys first
    assert canon_json(T("[1.50, 1e2]")) == b"[1.50, 100]"
    assert canon_json(T("{not json")).options == {"json_invalid_null": None}
    assert canon_json(T('"\\u0000"')).options == {"json_invalid_null": None}
    assert canon_json(T("NaN")).options == {"json_invalid_null": None}
    assert canon_json(None) is None


def test_jsonb_text_details():
    assert jsonb_text('  {"a" : [ 1 , 2 ] } ') == '{"a": [1, 2]}'
    assert jsonb_text('"\\u00e9\\n"') == '"é\\n"'
    assert pg_json_string("a\x01\"\\/") == '"a\\u0001\\"\\\\/"'
    assert jsonb_text('{"a": 1,}') is None


@pytest.mark.parametrize("text, printed", [
    ("1", "1"), ("1.0", "1.0"), ("1.50", "1.50"), ("1e2", "100"), ("1.5e-3", "0.0015"), ("-0", "0"),
    ("-0.0", "0.0"), ("0e5", "0"), ("12E-1", "1.2"), ("1.0e1", "10"), ("-1.5e+3", "-1500"),
])
def test_numbers_print_as_numeric(text, printed):
    assert pg_numeric_text(text) == printed


def test_repaired_values_read_back_in_canonical_form():
    assert canon_repaired("flag", "true") == b"t"
    assert canon_repaired("flag", "f") == b"f"
    assert canon_repaired("flag", None) is None
    assert canon_repaired("text", "a\ufffdb") == "a\ufffdb".encode()
    assert canon_repaired("timestamp", "2023-05-06 07:08:09+00") == b"2023-05-06T07:08:09.000000Z"
    assert canon_repaired("float", "0.5") == canon_float(0.5)
    assert canon_repaired("json", '{"b":1,"a":2}') == b'{"a": 2, "b": 1}'


def test_row_digest_separates_values_and_null():
    assert row_digest([b"ab", b"c"]) != row_digest([b"a", b"bc"])
    assert row_digest([None]) != row_digest([b""])
    assert row_digest([b"N"]) != row_digest([None])
    assert row_digest([b"x", None]) != row_digest([None, b"x"])
