"""The canonical forms of the SQLite side: the contracts' conversion rules, implemented
here independently of the merge (that is the point of a cross-check).

A canonicalizer takes one SQLite value and returns the canonical bytes (UTF-8), None for
NULL, or what the rules call for instead of loading it as-is: a Repair or a Reject.
"""

from __future__ import annotations

import codecs
import math
import re
import struct
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

from mailmig.sqlite_source import SqliteText
from mailmig.validate.jsonb import JSON_MAX_DEPTH, json_depth, jsonb_text, pg_numeric_text

UNKNOWN = object()  # a repair whose resulting value these rules do not predict


class Repair:
    """The rules repair this value: `options` maps each acceptable rule to the
    canonical value it yields (UNKNOWN when not predicted)."""

    __slots__ = ("options",)

    def __init__(self, options: dict):
        self.options = options

    def __repr__(self):
        return f"Repair({self.options!r})"


class Reject:
    """The rules reject the row for this value."""

    __slots__ = ("sqlstate", "reason")

    def __init__(self, sqlstate: str, reason: str):
        self.sqlstate = sqlstate
        self.reason = reason

    def __repr__(self):
        return f"Reject({self.sqlstate})"


def _valid_text(value: bytes) -> str | None:
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if "\x00" in text else text


def _replace_bad_bytes(error: UnicodeDecodeError):
    # each byte that is not part of a valid sequence becomes U+FFFD (not each maximal subpart)
    return "\ufffd" * (error.end - error.start), error.end


codecs.register_error("mailmig_each_byte", _replace_bad_bytes)


def replace_bad_bytes(value: bytes) -> str:
    """The contracts' text_bytes_replaced: invalid UTF-8 bytes and NUL become U+FFFD."""
    return bytes(value).decode("utf-8", "mailmig_each_byte").replace("\x00", "\ufffd")


def _number_as_text(value) -> str:
    """A number SQLite kept in a text column, as its typed-JSON value reads back."""
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return pg_numeric_text(repr(value))


def canon_text(value):
    if value is None:
        return None
    if type(value) is SqliteText:
        if b"\x00" not in value:
            try:
                value.decode("utf-8")
                return value
            except UnicodeDecodeError:
                pass
        return Repair({"text_bytes_replaced": replace_bad_bytes(value).encode()})
    if isinstance(value, bytes):
        return Repair({"blob_as_text": replace_bad_bytes(value).encode()})
    return _number_as_text(value).encode()


INT8_MIN, INT8_MAX = -(2**63), 2**63 - 1
_INT_TEXT = re.compile(r"-?[0-9]{1,19}", re.ASCII)  # the SQL rule's form; longer is beyond bigint


def canon_int(value):
    if value is None:
        return None
    number = None
    if type(value) is int:
        number = value
    elif type(value) is float:
        if math.isfinite(value) and value == int(value):
            number = int(value)
    elif type(value) is SqliteText:
        text = _valid_text(value)
        if text is not None and _INT_TEXT.fullmatch(text):
            number = int(text)
    if number is None or not INT8_MIN <= number <= INT8_MAX:
        return Repair({"number_unreadable_null": None})
    return str(number).encode()


_NUMERIC_TEXT = re.compile(r"\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]{1,3})?\s*", re.ASCII)
_FLOAT_TEXT_MIN, _FLOAT_TEXT_MAX = Decimal("1e-300"), Decimal("1e300")


def float_bits(number: float) -> bytes:
    """A double's exact bits as hex: the canonical form of spam_score."""
    return struct.pack(">d", number).hex().encode()


def canon_float(value):
    if value is None:
        return None
    if type(value) is int:
        return float_bits(float(value))
    if type(value) is float:
        if value != value:
            return float_bits(math.nan)  # one NaN: its typed JSON is the word, without payload
        return float_bits(value + 0.0)  # a zero's sign is not kept (jsonb numbers have no -0)
    if type(value) is SqliteText:
        text = _valid_text(value)
        # numeric text of at most 400 characters, by exact value: 0, or a magnitude in
        # [1e-300, 1e300] (migration.convert_value: a double holds it, no cast can raise)
        if text is not None and len(text) <= 400 and _NUMERIC_TEXT.fullmatch(text):
            exact = Decimal(text.strip(_ASCII_SPACE))
            if exact == 0:
                return float_bits(0.0)
            if _FLOAT_TEXT_MIN <= abs(exact) <= _FLOAT_TEXT_MAX:
                return float_bits(float(exact))
    return Repair({"number_unreadable_null": None})


FLAG_FALSE = {"0", "f", "false", "n", "no", "off"}
FLAG_TRUE = {"1", "t", "true", "y", "yes", "on"}
_ASCII_SPACE = " \t\n\r\f\v"


def canon_flag(value):
    if value is None:
        return None
    if type(value) is int:
        if value == 0:
            return b"f"
        if value == 1:
            return b"t"
        return Repair({"flag_nonzero_true": b"t"})
    if type(value) is SqliteText:
        text = _valid_text(value)
        if text is not None:
            word = text.strip(_ASCII_SPACE).lower()
            if word in FLAG_FALSE:
                return b"f"
            if word in FLAG_TRUE:
                return b"t"
    return Repair({"flag_unreadable_null": None})


# -- timestamps ---------------------------------------------------------------------
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
TS_MIN = EPOCH
TS_MAX = datetime(2100, 1, 1, tzinfo=timezone.utc)  # exclusive
_TS_TEXT = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
    r"(?:[ T]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,6}))?(Z|[+-][0-9]{2}:?[0-9]{2})?)?",
    re.ASCII,
)
# text epoch: the SQL rule's exact form (18 digits at most: anything longer is out of range anyway)
_EPOCH_TEXT = re.compile(r"-?[0-9]{1,18}(?:\.[0-9]{1,9})?", re.ASCII)


def format_instant(instant: datetime) -> bytes:
    return b"%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (
        instant.year, instant.month, instant.day, instant.hour, instant.minute, instant.second,
        instant.microsecond)


# The app's own form 'YYYY-MM-DD HH:MM:SS' (nearly every value): checked and rewritten
# without building a datetime; any other form takes the general path.
_APP_FORM = re.compile(rb"(19[7-9][0-9]|20[0-9][0-9])-[0-9]{2}-[0-9]{2} ([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]")
_valid_dates: set[bytes] = set()


def _app_form(value: bytes) -> bytes | None:
    if len(value) != 19 or not _APP_FORM.fullmatch(value):
        return None
    day = value[:10]
    if day not in _valid_dates:
        try:
            datetime(int(day[:4]), int(day[5:7]), int(day[8:10]))
        except ValueError:
            return None
        if len(_valid_dates) < 100_000:
            _valid_dates.add(day)
    return day + b"T" + value[11:] + b".000000Z"


def _in_range(instant: datetime | None) -> datetime | None:
    if instant is None or not TS_MIN <= instant < TS_MAX:
        return None
    return instant


def epoch_instant(number) -> datetime | None:
    """Epoch seconds (|v| < 1e11) or milliseconds, rounded to the microsecond."""
    if isinstance(number, float):
        if not math.isfinite(number):
            return None
        exact = Decimal(repr(number))  # by value as written, as its typed JSON carries it
    else:
        exact = Decimal(number)  # an int, or the Decimal of an epoch text
    seconds = exact if abs(exact) < Decimal("1e11") else exact / 1000
    if not Decimal(0) <= seconds < Decimal(4102444800):
        return None
    micros = int((seconds * 1_000_000).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return EPOCH + timedelta(microseconds=micros)


def text_instant(text: str) -> datetime | None:
    """One of the contracts' text forms as a UTC instant, else None."""
    if _EPOCH_TEXT.fullmatch(text):
        return epoch_instant(Decimal(text))
    match = _TS_TEXT.fullmatch(text)
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        instant = datetime(
            int(year), int(month), int(day),
            int(hour or 0), int(minute or 0), int(second or 0),
            int((fraction or "0").ljust(6, "0")),
            tzinfo=timezone.utc,
        )
    except ValueError:
        return None
    if zone and zone != "Z":
        hours, minutes = int(zone[1:3]), int(zone[-2:])
        if hours > 15 or minutes > 59:  # PostgreSQL's own limit for an offset: +-15:59
            return None
        offset = timedelta(hours=hours, minutes=minutes)
        instant = instant - offset if zone[0] == "+" else instant + offset
    return instant


def source_instant(value) -> datetime | None:
    if type(value) is int or type(value) is float:
        return _in_range(epoch_instant(value))
    if type(value) is SqliteText:
        text = _valid_text(value)
        return _in_range(text_instant(text)) if text is not None else None
    return None


def canon_timestamp(value):
    if value is None:
        return None
    if type(value) is SqliteText and (fast := _app_form(value)) is not None:
        return fast
    instant = source_instant(value)
    if instant is None:
        return Repair({"timestamp_unreadable_null": None})
    return format_instant(instant)


def canon_timestamp_required(value):
    if value is None:
        return Reject("23502", "created_at is NULL")
    if type(value) is SqliteText and (fast := _app_form(value)) is not None:
        return fast
    instant = source_instant(value)
    if instant is None:
        return Reject("22007", "created_at is not a timestamp of the accepted forms")
    return format_instant(instant)




def canon_json(value):
    if value is None:
        return None
    if type(value) is SqliteText:
        text = _valid_text(value)
        if text is None:
            return Repair({"json_invalid_null": None, "text_bytes_replaced": UNKNOWN})
    elif isinstance(value, bytes):
        return Repair({"json_invalid_null": None, "blob_as_text": UNKNOWN})
    else:
        text = _number_as_text(value)
    if text.count("[") + text.count("{") > JSON_MAX_DEPTH and json_depth(text) > JSON_MAX_DEPTH:
        return Repair({"json_invalid_null": None})  # the rule loads at most 1000 levels
    rendered = jsonb_text(text)
    if rendered is None:
        return Repair({"json_invalid_null": None})
    return rendered.encode()


CANONICALIZERS = {
    "text": canon_text,
    "int": canon_int,
    "float": canon_float,
    "flag": canon_flag,
    "json": canon_json,
    "timestamp": canon_timestamp,
    "timestamp_required": canon_timestamp_required,
}


def canon_repaired(kind: str, repaired: str | None) -> bytes | None:
    """repairs.repaired (the stored value as text) in the canonical form of its column."""
    if repaired is None:
        return None
    if kind == "flag":
        word = repaired.strip().lower()
        return b"t" if word in ("t", "true") else b"f" if word in ("f", "false") else repaired.encode()
    if kind == "float":
        try:
            return float_bits(float(repaired))
        except ValueError:
            return repaired.encode()
    if kind == "int":
        try:
            return str(int(repaired)).encode()
        except ValueError:
            return repaired.encode()
    if kind == "json":
        rendered = jsonb_text(repaired)
        return (rendered if rendered is not None else repaired).encode()
    if kind.startswith("timestamp"):
        text = repaired.strip()
        text = re.sub(r"([+-][0-9]{2})$", r"\1:00", text)  # PostgreSQL prints +00
        instant = text_instant(text)
        return format_instant(instant) if instant is not None else repaired.encode()
    return repaired.encode()

