"""Hypothesis strategies for what a SQLite column can hold: every storage class, any bytes,
and the shapes that sit on the edges of the conversion rules (timestamps that look right
but name no instant, offsets, epoch limits, numeric and flag text, JSON).

A value is what `mailmig.sqlite_source.connect_readonly` returns: None, int, float,
SqliteText (the bytes of a TEXT value, possibly invalid UTF-8 or with NUL) or bytes (a BLOB).
"""

from __future__ import annotations

import json

from hypothesis import strategies as st

from mailmig.sqlite_source import SqliteText

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
EPOCH_EDGES = [0, 1, -1, 4102444799, 4102444800, 99_999_999_999, 100_000_000_000, 4102444799999,
               4102444800000, 1_700_000_000, 1_700_000_000_123, 2**31, 2**63 - 1, -(2**63)]
INTEGERS = st.one_of(
    INT64,
    st.sampled_from(EPOCH_EDGES + [2, 3, 12, 4096]),
    st.integers(min_value=-10, max_value=10),
    st.integers(min_value=0, max_value=5_000_000_000),
    st.integers(min_value=10**11, max_value=5 * 10**12),
)
FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, 0.5, 12.5, 1e16, 1e19, 9.3e18, 1e300, 1e308, 5e-324, 1e-310,
                     float("inf"), float("-inf"), 1_700_000_000.5, 4102444799.9999995, 4102444800.0]),
    st.floats(min_value=0, max_value=5e12),
)


def _text(strategy) -> st.SearchStrategy:
    return strategy.map(lambda s: SqliteText(s.encode("utf-8", "surrogatepass")))


ANY_UNICODE = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=40)
SPACE = st.sampled_from(["", "", "", " ", "  ", "\t", "\n", "\r\n", "\x0b", "\x0c", "\u00a0", "\u2003", "\u3000"])


@st.composite
def timestamp_text(draw) -> str:
    """The accepted forms, and forms one step outside them (calendar, clock, zone, range)."""
    year = draw(st.one_of(st.integers(1965, 2105), st.integers(0, 9999), st.sampled_from([1972, 2000, 2024, 2025, 2100])))
    month = draw(st.one_of(st.integers(1, 12), st.integers(0, 19)))
    day = draw(st.one_of(st.integers(1, 28), st.integers(28, 31), st.integers(0, 39)))
    text = f"{year:04d}-{month:02d}-{day:02d}"
    if draw(st.integers(0, 5)) == 0:
        return draw(SPACE) + text + draw(SPACE)  # date only
    hour = draw(st.one_of(st.integers(0, 23), st.sampled_from([23, 24, 25, 29])))
    minute = draw(st.one_of(st.integers(0, 59), st.sampled_from([59, 60, 61])))
    second = draw(st.one_of(st.integers(0, 59), st.sampled_from([59, 60, 61])))
    text += draw(st.sampled_from([" ", "T", "t", "  "])) + f"{hour:02d}:{minute:02d}:{second:02d}"
    digits = draw(st.integers(0, 8))
    if digits:
        text += "." + "".join(draw(st.lists(st.sampled_from("0123456789"), min_size=digits, max_size=digits)))
    zone = draw(st.integers(0, 4))
    if zone == 1:
        text += draw(st.sampled_from(["Z", "z"]))
    elif zone >= 2:
        hh = draw(st.one_of(st.integers(0, 15), st.sampled_from([15, 16, 23, 24, 99])))
        mm = draw(st.one_of(st.sampled_from([0, 30, 45, 59]), st.sampled_from([60, 99])))
        text += draw(st.sampled_from("+-")) + f"{hh:02d}" + (":" if zone == 2 else "") + f"{mm:02d}"
    return draw(SPACE) + text + draw(SPACE) if draw(st.integers(0, 9)) == 0 else text


NUMBER_TEXT = st.one_of(
    INTEGERS.map(str),
    FLOATS.map(repr),
    st.from_regex(r"\A[ \t]?[+-]?([0-9]{1,25}\.?[0-9]{0,5}|\.[0-9]{1,5})([eE][+-]?[0-9]{1,4})?[ \t\n]?\Z"),
    st.sampled_from(["NaN", "nan", "Infinity", "-Infinity", "inf", "1e400", "-1e400", "1e-400", "0x10", "1_000",
                     "1" * 5000, "9" * 19, "9223372036854775807", "9223372036854775808", "-9223372036854775809",
                     "1e305", "1e300", "1e-300", "1e-310", "1e0001", "12.0", "12.", ".5", "+5", "0,75", "", " "]),
)
FLAG_TEXT = st.builds(
    lambda pad1, word, pad2, upper: pad1 + (word.upper() if upper else word) + pad2,
    SPACE, st.sampled_from(["0", "1", "t", "f", "true", "false", "y", "n", "yes", "no", "on", "off", "maybe",
                            "2", "-1", "", "tru", "oui"]), SPACE, st.booleans())
JSON_VALUE = st.recursive(
    st.one_of(st.none(), st.booleans(), INT64, st.floats(allow_nan=False, allow_infinity=False), ANY_UNICODE),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(ANY_UNICODE, inner, max_size=4)),
    max_leaves=12)
JSON_TEXT = st.one_of(
    JSON_VALUE.map(lambda v: json.dumps(v, ensure_ascii=False)),
    JSON_VALUE.map(json.dumps),
    st.sampled_from(['{"a": 1, "a": 2}', '{"n": 1e16}', '{"n": 1E+2}', '[1.50, -0, 0e10]', '{"x": 1e400}',
                     "[1e-400]", '"\\u0000"', '"\\ud800"', '{"\\u0000": 1}', "[" * 3000 + "]" * 3000,
                     "NaN", "[NaN]", "Infinity", "null", " ", "", "{", '{"a": 1} x', "1" * 5000, "0." + "0" * 20000 + "1",
                     "1e131072", "1e-16384", "1e-16383"]),
)

TEXT = st.one_of(
    _text(ANY_UNICODE),
    _text(timestamp_text()),
    _text(NUMBER_TEXT),
    _text(FLAG_TEXT),
    _text(JSON_TEXT),
    _text(SPACE),
    st.binary(max_size=24).map(SqliteText),  # any bytes stored as TEXT: invalid UTF-8, NUL
    st.sampled_from([SqliteText(b"null:1"), SqliteText(b"blob:00"), SqliteText(b"text:x"), SqliteText(b"hex:ff"),
                     SqliteText(b"integer:5"), SqliteText(b"real:0.5")]),  # text shaped like a key name
)
BLOBS = st.one_of(st.binary(max_size=24), st.sampled_from([b"", b"abc", b"2026-10-01 12:00:00", b"1", b"\xff"]))

ANY_VALUE = st.one_of(st.none(), INTEGERS, FLOATS, TEXT, BLOBS)
