"""`mailmig validate`: prove that every row and every column of the load arrived.

Both sides are brought to one canonical form per column (the contracts' conversion
rules, implemented here independently of the merge: that is the point of a
cross-check) and compared in three steps:

1. gate: row counts per table (and per month of `created_at` for emails), where
   source rows = PostgreSQL rows + rejects;
2. digest: an md5 of each row's canonical values, summed per bucket (1024 ids, or
   4096 md5 buckets of the session id). PostgreSQL renders and hashes its rows
   server-side (only bucket sums cross the wire); the SQLite side streams its rows in
   Python. The two sides run at once;
3. drill-down: the rows of each differing bucket are fetched from both sides and
   each missing, extra and changed row is named, with each differing column.

Columns named in `migration.repairs` are compared through the recorded original
(which must equal the source value) and repaired value (which must equal the
PostgreSQL value); rows in `migration.rejects` are accounted for when their recorded
original equals the source row and the key is absent from PostgreSQL.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import math
import re
import struct
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path

import psycopg
from psycopg import sql

from mailmig import queries, runs
from mailmig.sqlite_source import SqliteText, connect_readonly, encode_value, source_key

MAX_STORED_DIFFS = 10_000  # differences kept in validate.json (counts are always exact)
DISPLAY_CHARS = 80

# ---------------------------------------------------------------------------------
# Canonical forms (the SQLite side). A canonicalizer takes one SQLite value and
# returns the canonical bytes (UTF-8), None for NULL, or what the rules call for
# instead of loading it as-is: a Repair or a Reject.
# ---------------------------------------------------------------------------------

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
_INT_TEXT = re.compile(r"[+-]?[0-9]+", re.ASCII)


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


_NUMERIC_TEXT = re.compile(r"\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*", re.ASCII)


def float_bits(number: float) -> bytes:
    """A double's exact bits as hex: the canonical form of spam_score."""
    return struct.pack(">d", number).hex().encode()


def canon_float(value):
    if value is None:
        return None
    if type(value) is int:
        return float_bits(float(value))
    if type(value) is float:
        return float_bits(value)
    if type(value) is SqliteText:
        text = _valid_text(value)
        if text is not None and _NUMERIC_TEXT.fullmatch(text):
            number = float(text)
            if math.isfinite(number):
                return float_bits(number)
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
_DIGITS = re.compile(r"[0-9]+", re.ASCII)


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
        exact = Decimal(number)
    seconds = exact if abs(exact) < Decimal("1e11") else exact / 1000
    if not Decimal(0) <= seconds < Decimal(4102444800):
        return None
    micros = int((seconds * 1_000_000).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return EPOCH + timedelta(microseconds=micros)


def text_instant(text: str) -> datetime | None:
    """One of the contracts' text forms as a UTC instant, else None."""
    if _DIGITS.fullmatch(text):
        return epoch_instant(int(text))
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
        if hours > 23 or minutes > 59:
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


# -- JSON by meaning: jsonb's canonical text ------------------------------------------
class JsonNumber(str):
    """A JSON number kept as written (jsonb stores it as numeric, exactly)."""


class JsonInvalid(ValueError):
    pass


_BAD_JSON_CHARS = re.compile("[\x00\ud800-\udfff]")
_JSON_ESCAPE = re.compile('["\\\\\x00-\x1f]')
_JSON_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_match(match) -> str:
    char = match.group()
    return _JSON_ESCAPES.get(char) or "\\u%04x" % ord(char)


def pg_json_string(text: str) -> str:
    """A string as PostgreSQL's escape_json writes it."""
    return '"' + _JSON_ESCAPE.sub(_escape_match, text) + '"'


NUMERIC_MAX_ADJUSTED = 131071  # numeric holds up to 131072 digits before the point
NUMERIC_DSCALE_MAX = 16383


def pg_numeric_text(text: str) -> str:
    """A JSON number as PostgreSQL's numeric prints it: plain notation, the scale as
    written less the exponent (1.50 -> 1.50, 1e2 -> 100, 1.5e-3 -> 0.0015), no -0."""
    sign, digits, exponent = Decimal(text).as_tuple()
    magnitude = int("".join(map(str, digits)))
    if exponent >= 0:
        body = str(magnitude) + ("0" * exponent if magnitude else "")
    else:
        padded = str(magnitude).rjust(1 - exponent, "0")
        body = padded[:exponent] + "." + padded[exponent:]
    return ("-" if sign and magnitude else "") + body


def _check_json_number(text: str) -> JsonNumber:
    number = Decimal(text)
    _, _, exponent = number.as_tuple()
    if -exponent > NUMERIC_DSCALE_MAX or (number != 0 and number.adjusted() > NUMERIC_MAX_ADJUSTED):
        raise JsonInvalid("numeric out of range")
    return JsonNumber(text)


def _json_pairs(pairs):
    for key, _ in pairs:
        if _BAD_JSON_CHARS.search(key):
            raise JsonInvalid("key with NUL or a lone surrogate")
    return dict(pairs)  # the last of duplicate keys wins, as in jsonb


def _json_constant(name):
    raise JsonInvalid(f"{name} is not JSON")


def _render_json(value) -> str:
    if isinstance(value, dict):
        keys = sorted(value, key=_jsonb_key_order)
        return "{" + ", ".join(pg_json_string(k) + ": " + _render_json(value[k]) for k in keys) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_render_json(item) for item in value) + "]"
    if isinstance(value, JsonNumber):
        return pg_numeric_text(value)
    if isinstance(value, str):
        if _BAD_JSON_CHARS.search(value):
            raise JsonInvalid("string with NUL or a lone surrogate")
        return pg_json_string(value)
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    raise JsonInvalid(f"unexpected {type(value).__name__}")


class _SlowPath(Exception):
    """The fast renderer cannot print this value exactly; the general one can."""


# \u0000 and \ud800-\udfff escapes need the general path's checks (jsonb refuses them)
_JSON_NEEDS_CHECKS = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
_JSON_ENCODER = json.JSONEncoder(ensure_ascii=False, check_circular=False, allow_nan=False)


def _sorted_object(pairs):
    obj = dict(pairs)  # the last of duplicate keys wins
    if len(obj) < 2:
        return obj
    return {k: obj[k] for k in sorted(obj, key=_jsonb_key_order)}


def _jsonb_key_order(key: str):
    raw = key.encode()
    return len(raw), raw


def _float_or_slow(text: str) -> float:
    number = float(text)
    if repr(number) != pg_numeric_text(text):  # 1.50, 1e2, 1e400: only numeric prints them
        raise _SlowPath
    return number


def _int_or_slow(text: str) -> int:
    if len(text) > 4000:  # beyond Python's int-from-text limit; numeric takes it
        raise _SlowPath
    return int(text)


def _jsonb_text_fast(text: str) -> str:
    """jsonb_text for the common case, on the C scanner and encoder: Python's json.dumps
    escapes strings exactly as PostgreSQL's escape_json does (ensure_ascii off) and
    writes the same ', ' / ': ' spacing."""
    return _JSON_ENCODER.encode(_FAST_DECODER.decode(text))


_FAST_DECODER = json.JSONDecoder(object_pairs_hook=_sorted_object, parse_float=_float_or_slow,
                                 parse_int=_int_or_slow, parse_constant=_json_constant)


def jsonb_text(text: str) -> str | None:
    """The text PostgreSQL prints for `text::jsonb`, or None when jsonb refuses it.

    jsonb keeps the last of duplicate keys, orders keys by length then bytes, writes
    `{"a": 1, "b": [1, 2]}`, and keeps numbers as numeric (1.50 stays 1.50)."""
    if not _JSON_NEEDS_CHECKS.search(text):
        try:
            return _jsonb_text_fast(text)
        except _SlowPath:
            pass
        except (ValueError, RecursionError):
            return None
    try:
        value = json.loads(
            text,
            object_pairs_hook=_json_pairs,
            parse_int=_check_json_number,
            parse_float=_check_json_number,
            parse_constant=_json_constant,
        )
        return _render_json(value)
    except (ValueError, RecursionError, InvalidOperation):
        return None


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


# ---------------------------------------------------------------------------------
# The tables
# ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TableSpec:
    name: str
    database: str  # "emails" or "auth": which SQLite file
    columns: tuple  # ((name, kind), ...), the key first
    query: str  # the canonical query file
    int_key: bool

    @property
    def column_names(self):
        return [name for name, _ in self.columns]


TABLES = (
    TableSpec(
        "emails", "emails",
        (("id", "int"), ("message_id", "text"), ("from_address", "text"), ("to_address", "text"),
         ("subject", "text"), ("body", "text"), ("html", "text"), ("headers", "json"),
         ("raw_email", "text"), ("size", "int"), ("starred", "flag"), ("is_read", "flag"),
         ("spam_score", "float"), ("created_at", "timestamp_required")),
        "validate_emails_canonical", True,
    ),
    TableSpec(
        "accounts", "auth",
        (("id", "int"), ("email", "text"), ("password_hash", "text"), ("token", "text"),
         ("created_at", "timestamp"), ("expires_at", "timestamp"), ("last_login_at", "timestamp"),
         ("is_active", "flag")),
        "validate_accounts_canonical", True,
    ),
    TableSpec(
        "sessions", "auth",
        (("id", "text"), ("account_id", "int"), ("created_at", "timestamp"), ("expires_at", "timestamp"),
         ("ip", "text"), ("user_agent", "text")),
        "validate_sessions_canonical", False,
    ),
)
BUCKET_SHIFT = 10  # 1024 ids per bucket


def bucket_of(spec: TableSpec, key: bytes | None) -> int:
    if spec.int_key:
        return int(key) >> BUCKET_SHIFT
    return int(hashlib.md5(key or b"").hexdigest()[:3], 16)


def row_digest(values) -> tuple[int, int]:
    """md5 over the canonical values, each as 'N' (NULL) or 'V<bytes>:<value>' so no
    two rows can run together; returned as two signed 64-bit halves (summed per bucket)."""
    parts = []
    for value in values:
        if value is None:
            parts.append(b"N")
        else:
            parts.append(b"V%d:" % len(value))
            parts.append(value)
    d = hashlib.md5(b"".join(parts)).digest()
    return int.from_bytes(d[:8], "big", signed=True), int.from_bytes(d[8:], "big", signed=True)


def load_query(name: str) -> str:
    return queries.load(name)


# ---------------------------------------------------------------------------------
# Differences
# ---------------------------------------------------------------------------------


def display(value, kind: str | None = None) -> str | None:
    """A canonical value for people: decoded, truncated, floats also by value."""
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", "replace")
    if kind == "float":
        try:
            value = f"{struct.unpack('>d', bytes.fromhex(value))[0]!r} [{value}]"
        except ValueError:
            pass
    if len(value) > DISPLAY_CHARS:
        return value[:DISPLAY_CHARS] + f"... ({len(value)} chars)"
    return value


def display_original(encoded: dict) -> str:
    return display(json.dumps(encoded, ensure_ascii=False))


class Differences:
    """Every difference counted exactly; the first MAX_STORED_DIFFS kept whole."""

    def __init__(self):
        self.items: list[dict] = []
        self.counts: dict[str, dict[str, int]] = {}
        self.lock = threading.Lock()

    def add(self, table: str, kind: str, key, **detail) -> None:
        with self.lock:
            per_table = self.counts.setdefault(table, {})
            per_table[kind] = per_table.get(kind, 0) + 1
            if len(self.items) < MAX_STORED_DIFFS:
                self.items.append({"table": table, "kind": kind, "key": key, **detail})

    def count(self, table: str, kind: str) -> int:
        return self.counts.get(table, {}).get(kind, 0)


# kinds of difference that are not a missing, extra or changed row
PROBLEM_KINDS = (
    "reject_original_differs",  # rejects.original is not the source row
    "reject_without_source_row",
    "rejected_but_in_postgresql",
    "reject_expected",  # the rules reject the row; it was not rejected
    "repair_original_differs",  # repairs.original is not the source value
    "repair_without_source_row",
    "repair_not_by_the_rules",  # a repair the rules do not call for, or another rule
    "repair_value_not_by_the_rules",
    "repair_expected",  # the rules repair the value; no repair was recorded
)


# ---------------------------------------------------------------------------------
# The SQLite side
# ---------------------------------------------------------------------------------


@dataclass
class Bookkeeping:
    """migration.repairs and migration.rejects, by (table, source key)."""

    repairs: dict = field(default_factory=dict)  # (table, key) -> {column: row dict}
    rejects: dict = field(default_factory=dict)  # (table, key) -> row dict
    run_ids: set = field(default_factory=set)

    def repaired_rows(self, table: str) -> int:
        return sum(1 for t, _ in self.repairs if t == table)

    def repaired_columns(self, table: str) -> int:
        return sum(len(cols) for (t, _), cols in self.repairs.items() if t == table)

    def rejected_rows(self, table: str) -> int:
        return sum(1 for t, _ in self.rejects if t == table)


_OUTCOMES = (Repair, Reject)
_CANONICALIZERS_OF: dict[str, tuple] = {}


def _canonicalizers(spec: TableSpec) -> tuple:
    fns = _CANONICALIZERS_OF.get(spec.name)
    if fns is None:
        fns = _CANONICALIZERS_OF[spec.name] = tuple(CANONICALIZERS[kind] for _, kind in spec.columns)
    return fns


def expected_row(spec: TableSpec, row, book: Bookkeeping, diffs: Differences | None):
    """(source key, canonical values PostgreSQL must hold, rejected?) of one source row.

    Records in `diffs` what is wrong with its reject or repairs (when diffs is given)."""
    key = source_key(row[0])
    reject = book.rejects.get((spec.name, key))
    if reject is not None:
        if diffs is not None:
            original = reject["original"] or {}
            for (name, _), value in zip(spec.columns, row):
                if original.get(name) != encode_value(value):
                    diffs.add(spec.name, "reject_original_differs", key, column=name,
                              source=display_original(encode_value(value)),
                              recorded=display_original(original.get(name)) if name in original else None)
        canon = CANONICALIZERS[spec.columns[0][1]](row[0])
        return key, [canon if isinstance(canon, bytes) else None], True
    repairs = book.repairs.get((spec.name, key))
    if repairs is None:  # the common case, kept fast
        values = [canon(value) for canon, value in zip(_canonicalizers(spec), row)]
        if not any(type(out) in _OUTCOMES for out in values):
            return key, values, False
    values = []
    for (name, kind), value in zip(spec.columns, row):
        out = CANONICALIZERS[kind](value)
        repair = repairs.get(name) if repairs else None
        if repair is not None:
            expected = canon_repaired(kind, repair["repaired"])
            if diffs is not None:
                encoded = encode_value(value)
                if repair["original"] != encoded:
                    diffs.add(spec.name, "repair_original_differs", key, column=name,
                              source=display_original(encoded), recorded=display_original(repair["original"]))
                if isinstance(out, Repair):
                    if repair["rule"] not in out.options:
                        diffs.add(spec.name, "repair_not_by_the_rules", key, column=name,
                                  rule=repair["rule"], rules_say=sorted(out.options))
                    else:
                        predicted = out.options[repair["rule"]]
                        if predicted is not UNKNOWN and predicted != expected:
                            diffs.add(spec.name, "repair_value_not_by_the_rules", key, column=name,
                                      rule=repair["rule"], recorded=display(expected, kind),
                                      rules_say=display(predicted, kind))
                else:
                    diffs.add(spec.name, "repair_not_by_the_rules", key, column=name, rule=repair["rule"],
                              rules_say="reject" if isinstance(out, Reject) else "load as-is",
                              source=display_original(encoded))
            values.append(expected)
        elif isinstance(out, Repair):
            if diffs is not None:
                diffs.add(spec.name, "repair_expected", key, column=name, rules_say=sorted(out.options),
                          source=display_original(encode_value(value)))
            predicted = next(iter(out.options.values()))
            values.append(None if predicted is UNKNOWN else predicted)
        elif isinstance(out, Reject):
            if diffs is not None:
                diffs.add(spec.name, "reject_expected", key, column=name, sqlstate=out.sqlstate,
                          reason=out.reason, source=display_original(encode_value(value)))
            values.append(None)
        else:
            values.append(out)
    return key, values, False


def _select_source(spec: TableSpec, where: str = "") -> str:
    columns = ", ".join('"' + name + '"' for name in spec.column_names)
    return f'SELECT {columns} FROM "{spec.name}"{where}'


def scan_source(spec: TableSpec, conn, book: Bookkeeping, diffs: Differences, progress=None) -> dict:
    """Stream one SQLite table: bucket sums, per-month counts, the source keys seen."""
    buckets: dict[int, list] = {}
    months: dict[str, int] = {}
    rows = rejected = 0
    seen_book_keys = set()
    created_at = spec.column_names.index("created_at") if spec.name == "emails" else None
    for row in conn.execute(_select_source(spec)):
        rows += 1
        key, values, is_rejected = expected_row(spec, row, book, diffs)
        if (spec.name, key) in book.rejects or (spec.name, key) in book.repairs:
            seen_book_keys.add(key)
        if is_rejected:
            rejected += 1
            continue
        hi, lo = row_digest(values)
        acc = buckets.get(bucket := bucket_of(spec, values[0]))
        if acc is None:
            buckets[bucket] = [1, hi, lo]
        else:
            acc[0] += 1
            acc[1] += hi
            acc[2] += lo
        if created_at is not None:
            stamp = values[created_at]
            month = stamp[:7].decode() if stamp else "(no timestamp)"
            months[month] = months.get(month, 0) + 1
        if progress and rows % 100_000 == 0:
            progress(f"  sqlite {spec.name}: {rows:,} rows read")
    for (table, key) in set(book.rejects) | set(book.repairs):
        if table == spec.name and key not in seen_book_keys:
            kind = "reject_without_source_row" if (table, key) in book.rejects else "repair_without_source_row"
            diffs.add(table, kind, key)
    return {"rows": rows, "rejected": rejected, "buckets": buckets, "months": months}


# ---------------------------------------------------------------------------------
# The PostgreSQL side
# ---------------------------------------------------------------------------------


def _digest_query(spec: TableSpec) -> sql.Composed:
    parts = [
        sql.SQL("coalesce('V' || octet_length({c}) || ':' || {c}, 'N')").format(c=sql.Identifier("c", name))
        for name in spec.column_names
    ]
    return sql.SQL(
        "SELECT bucket, count(*),"
        " sum(('x' || substr(h, 1, 16))::bit(64)::bigint),"
        " sum(('x' || substr(h, 17, 16))::bit(64)::bigint)"
        " FROM (SELECT c.bucket, md5({row}) AS h FROM ({canonical}) AS c) AS d"
        " GROUP BY bucket"
    ).format(row=sql.SQL(" || ").join(parts), canonical=sql.SQL(load_query(spec.query)))


def _connect(conninfo: str) -> psycopg.Connection:
    conn = psycopg.connect(conninfo, autocommit=True)
    conn.execute("SET jit = off")  # compiling the wide expressions costs more than it saves
    return conn


def pg_digest(conninfo: str, spec: TableSpec, lo: int | None = None, hi: int | None = None) -> dict:
    params = {"lo": lo, "hi": hi} if spec.int_key else None
    with _connect(conninfo) as conn:
        rows = conn.execute(_digest_query(spec), params).fetchall()
    return {bucket: [count, int(s_hi), int(s_lo)] for bucket, count, s_hi, s_lo in rows}


def pg_rows(conn, spec: TableSpec, buckets: list[int]):
    """The canonical rows of PostgreSQL in the given buckets: key -> [values...] (list
    of rows when a key is duplicated)."""
    canonical = sql.SQL(load_query(spec.query))
    query = sql.SQL("SELECT * FROM ({canonical}) AS c WHERE c.bucket = ANY(%(buckets)s)").format(
        canonical=canonical
    )
    result: dict[str, list] = {}
    if spec.int_key:
        ranges = _ranges(buckets)
        batches = [({"lo": a << BUCKET_SHIFT, "hi": (b + 1) << BUCKET_SHIFT, "buckets": buckets}) for a, b in ranges]
    else:
        batches = [{"buckets": buckets}]
    for params in batches:
        for row in conn.execute(query, params):
            values = [None if v is None else v.encode() for v in row[1:]]
            result.setdefault(values[0].decode(), []).append(values)
    return result


def _ranges(buckets: list[int]) -> list[tuple[int, int]]:
    out = []
    for b in sorted(buckets):
        if out and out[-1][1] == b - 1:
            out[-1] = (out[-1][0], b)
        else:
            out.append((b, b))
    return out


def read_bookkeeping(conn) -> Bookkeeping:
    book = Bookkeeping()
    if conn.execute("SELECT to_regclass('migration.repairs') IS NOT NULL").fetchone()[0]:
        cur = conn.cursor(row_factory=psycopg.rows.dict_row)
        for r in cur.execute(load_query("validate_repairs")):
            book.repairs.setdefault((r["source_table"], r["source_key"]), {})[r["column_name"]] = r
            book.run_ids.add(r["run_id"])
    if conn.execute("SELECT to_regclass('migration.rejects') IS NOT NULL").fetchone()[0]:
        cur = conn.cursor(row_factory=psycopg.rows.dict_row)
        for r in cur.execute(load_query("validate_rejects")):
            book.rejects[(r["source_table"], r["source_key"])] = r
            book.run_ids.add(r["run_id"])
    return book


# ---------------------------------------------------------------------------------
# Drill-down
# ---------------------------------------------------------------------------------


def source_rows(spec: TableSpec, conn, buckets: list[int], book: Bookkeeping):
    """Expected rows of the source in the given buckets: (expected key -> values,
    expected keys of rejected rows)."""
    wanted = set(buckets)
    rows: dict[str, list] = {}
    rejected: set[str] = set()
    if spec.int_key:
        key = '"' + spec.column_names[0] + '"'
        batches = [
            conn.execute(_select_source(spec, f" WHERE {key} >= ? AND {key} < ?"),
                         (a << BUCKET_SHIFT, (b + 1) << BUCKET_SHIFT))
            for a, b in _ranges(buckets)
        ]
    else:
        batches = [conn.execute(_select_source(spec))]
    for cursor in batches:
        for row in cursor:
            _, values, is_rejected = expected_row(spec, row, book, None)
            if values[0] is None or bucket_of(spec, values[0]) not in wanted:
                continue
            pg_key = values[0].decode("utf-8", "replace")
            if is_rejected:
                rejected.add(pg_key)
            else:
                rows[pg_key] = values
    return rows, rejected


DRILL_CHUNK = {True: 8, False: 512}  # buckets fetched at once: memory stays bounded


def drill_down(spec: TableSpec, src_conn, pg_conn, buckets: list[int], book: Bookkeeping,
               diffs: Differences) -> dict:
    found = {"missing": 0, "extra": 0, "changed": 0}
    step = DRILL_CHUNK[spec.int_key]
    for start in range(0, len(buckets), step):
        _drill_chunk(spec, src_conn, pg_conn, buckets[start:start + step], book, diffs, found)
    return found


def _drill_chunk(spec, src_conn, pg_conn, buckets, book, diffs, found) -> None:
    expected, rejected = source_rows(spec, src_conn, buckets, book)
    actual = pg_rows(pg_conn, spec, buckets)
    kinds = dict(spec.columns)
    for key in sorted(set(expected) | set(actual), key=lambda k: (len(k), k) if spec.int_key else k):
        want = expected.get(key)
        have = actual.get(key, [])
        if want is None:
            kind = "rejected_but_in_postgresql" if key in rejected else "extra"
            for values in have:
                if kind == "extra":
                    found["extra"] += 1
                diffs.add(spec.name, kind, key, row={
                    name: display(v, kinds[name]) for name, v in zip(spec.column_names, values)})
            continue
        if not have:
            found["missing"] += 1
            diffs.add(spec.name, "missing", key)
            continue
        # the best match first; further rows under the same key are extra
        have = sorted(have, key=lambda values: sum(a != b for a, b in zip(values, want)))
        columns = [
            {"column": name, "source": display(w, kinds[name]), "postgresql": display(h, kinds[name])}
            for name, w, h in zip(spec.column_names, want, have[0])
            if w != h
        ]
        if columns:
            found["changed"] += 1
            diffs.add(spec.name, "changed", key, columns=columns)
        for values in have[1:]:
            found["extra"] += 1
            diffs.add(spec.name, "extra", key, duplicate_key=True, row={
                name: display(v, kinds[name]) for name, v in zip(spec.column_names, values)})


# ---------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------


@dataclass
class ValidateResult:
    ok: bool
    run: runs.Run
    report: dict


def resolve_sources(runs_dir: Path, source: str, emails_db, auth_db, live_paths=None) -> dict:
    """Which SQLite files to compare with: a load's snapshot, or the live files."""
    info: dict = {"kind": source}
    if source == "snapshot":
        load = runs.latest(runs_dir, "load")
        if load is not None:
            snapshot = load.dir / "snapshot"
            info.update(load_run=load.id, snapshot=str(snapshot))
            manifest = snapshot / "manifest.json"
            if manifest.exists():
                info["manifest"] = json.loads(manifest.read_text())
            emails_db = emails_db or snapshot / "emails.db"
            auth_db = auth_db or snapshot / "auth.db"
        elif not (emails_db and auth_db):
            raise RuntimeError(
                f"no load to validate: {Path(runs_dir) / 'latest-load'} does not exist "
                "(run `mailmig load` first, or give --source live or --emails-db/--auth-db)"
            )
    elif source == "live":
        if live_paths is not None:
            emails_db = emails_db or live_paths[0]
            auth_db = auth_db or live_paths[1]
    else:
        raise ValueError(f"source must be 'snapshot' or 'live', not {source!r}")
    if not (emails_db and auth_db):
        raise RuntimeError("the SQLite files to compare with are not known (give --emails-db and --auth-db)")
    for path in (emails_db, auth_db):
        if not Path(path).is_file():
            raise RuntimeError(f"{path}: no such SQLite file")
    info.update(emails_db=str(emails_db), auth_db=str(auth_db))
    return info


def _split_range(conninfo: str) -> list[tuple[int, int]]:
    with _connect(conninfo) as conn:
        low, high = conn.execute(load_query("validate_key_range")).fetchone()
    if low is None:
        return [(INT8_MIN, INT8_MAX)]
    mid = ((low + high) // 2 >> BUCKET_SHIFT) << BUCKET_SHIFT  # on a bucket boundary
    return [(INT8_MIN, mid), (mid, INT8_MAX)]


def _merge_buckets(*parts: dict) -> dict:
    merged: dict[int, list] = {}
    for part in parts:
        for bucket, (count, hi, lo) in part.items():
            acc = merged.setdefault(bucket, [0, 0, 0])
            acc[0] += count
            acc[1] += hi
            acc[2] += lo
    return merged


def run_validate(conninfo: str, runs_dir, source: str = "snapshot", emails_db=None, auth_db=None,
                 progress=None, live_paths=None) -> ValidateResult:
    """Compare every row and column of mail.* with the SQLite source; write validate.json."""
    say = progress or (lambda message: None)
    started = time.monotonic()
    runs_dir = Path(runs_dir)
    sources = resolve_sources(runs_dir, source, emails_db, auth_db, live_paths)
    run = runs.new_run(runs_dir, "validate")
    say(f"validate run {run.id}: {sources['emails_db']}, {sources['auth_db']} against PostgreSQL")
    sqlite = {
        "emails": connect_readonly(sources["emails_db"]),
        "auth": connect_readonly(sources["auth_db"]),
    }
    diffs = Differences()
    try:
        with _connect(conninfo) as conn:
            book = read_bookkeeping(conn)
            # the gate: row counts per table, both sides
            gate = {}
            for spec in TABLES:
                src = sqlite[spec.database].execute(f'SELECT count(*) FROM "{spec.name}"').fetchone()[0]
                pg = conn.execute(sql.SQL("SELECT count(*) FROM mail.{}").format(sql.Identifier(spec.name))).fetchone()[0]
                rejected = book.rejected_rows(spec.name)
                gate[spec.name] = {"source": src, "pg": pg, "rejected": rejected, "ok": src == pg + rejected}
                say(f"gate {spec.name}: source {src:,} = postgresql {pg:,} + rejected {rejected:,}: "
                    + ("ok" if gate[spec.name]["ok"] else "DIFFERS"))
            pg_months = dict(conn.execute(load_query("validate_emails_per_month")).fetchall())

        # the digest: PostgreSQL on two connections while this thread reads SQLite
        by_name = {spec.name: spec for spec in TABLES}
        (lo1, hi1), (lo2, hi2) = _split_range(conninfo)

        def pg_side_a():
            emails = pg_digest(conninfo, by_name["emails"], lo1, hi1)
            return emails, pg_digest(conninfo, by_name["accounts"], INT8_MIN, INT8_MAX)

        def pg_side_b():
            emails = pg_digest(conninfo, by_name["emails"], lo2, hi2)
            return emails, pg_digest(conninfo, by_name["sessions"])

        with ThreadPoolExecutor(max_workers=2) as pool:
            future_a = pool.submit(pg_side_a)
            future_b = pool.submit(pg_side_b)
            source_side = {}
            for spec in TABLES:
                say(f"digest {spec.name}: reading SQLite")
                source_side[spec.name] = scan_source(spec, sqlite[spec.database], book, diffs, progress)
            emails_a, accounts = future_a.result()
            emails_b, sessions = future_b.result()
        pg_side = {"emails": _merge_buckets(emails_a, emails_b), "accounts": accounts, "sessions": sessions}
        digest_seconds = time.monotonic() - started

        tables = {}
        with _connect(conninfo) as conn:
            for spec in TABLES:
                src, pg = source_side[spec.name]["buckets"], pg_side[spec.name]
                differing = sorted(b for b in set(src) | set(pg) if src.get(b) != pg.get(b))
                found = {"missing": 0, "extra": 0, "changed": 0}
                if differing:
                    say(f"drill-down {spec.name}: {len(differing)} differing bucket(s)")
                    found = drill_down(spec, sqlite[spec.database], conn, differing, book, diffs)
                problems = {kind: diffs.count(spec.name, kind) for kind in PROBLEM_KINDS
                            if diffs.count(spec.name, kind)}
                entry = {
                    "source": gate[spec.name]["source"],
                    "pg": gate[spec.name]["pg"],
                    "rejected": gate[spec.name]["rejected"],
                    "repaired_rows": book.repaired_rows(spec.name),
                    "repaired_columns": book.repaired_columns(spec.name),
                    **found,
                    "problems": problems,
                    "buckets": len(set(src) | set(pg)),
                    "differing_buckets": differing[:1000],
                    "gate_ok": gate[spec.name]["ok"],
                }
                if spec.name == "emails":
                    src_months = source_side["emails"]["months"]
                    months = [
                        {"month": m, "source": src_months.get(m, 0), "pg": pg_months.get(m, 0),
                         "ok": src_months.get(m, 0) == pg_months.get(m, 0)}
                        for m in sorted(set(src_months) | set(pg_months))
                    ]
                    entry["months"] = months
                    entry["months_ok"] = all(m["ok"] for m in months)
                entry["ok"] = (
                    entry["gate_ok"] and entry.get("months_ok", True) and not differing
                    and not problems and not any(found.values())
                )
                tables[spec.name] = entry
    finally:
        for conn in sqlite.values():
            conn.close()

    ok = all(t["ok"] for t in tables.values())
    report = {
        "ok": ok,
        "run_id": run.id,
        "source": sources,
        "bookkeeping_run_ids": sorted(book.run_ids),
        "tables": tables,
        "difference_counts": diffs.counts,
        "differences": diffs.items,
        "differences_truncated": sum(sum(c.values()) for c in diffs.counts.values()) > len(diffs.items),
        "seconds": {"digest": round(digest_seconds, 3), "total": round(time.monotonic() - started, 3)},
    }
    path = run.write_json("validate.json", report)
    runs.mark_latest(runs_dir, run)
    report["report_path"] = str(path)
    return ValidateResult(ok, run, report)


# ---------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------


def summary_lines(report: dict, max_diffs: int = 20) -> list[str]:
    header = ("table", "source", "pg", "rejected", "repaired", "missing", "extra", "changed", "problems", "ok")
    rows = [header]
    for name, t in report["tables"].items():
        rows.append((name, f"{t['source']:,}", f"{t['pg']:,}", f"{t['rejected']:,}", f"{t['repaired_rows']:,}",
                     str(t["missing"]), str(t["extra"]), str(t["changed"]), str(sum(t["problems"].values())),
                     "yes" if t["ok"] else "NO"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
    for name, t in report["tables"].items():
        for m in t.get("months", []):
            if not m["ok"]:
                lines.append(f"{name} month {m['month']}: source {m['source']:,}, postgresql {m['pg']:,}")
    shown = report["differences"][:max_diffs]
    if shown:
        lines.append("")
        lines.append("differences" + (f" (first {len(shown)})" if len(report["differences"]) > len(shown) else "") + ":")
    for d in shown:
        head = f"  {d['table']} {d['key']}: {d['kind']}"
        if d["kind"] == "changed":
            lines.append(head)
            for c in d["columns"]:
                lines.append(f"      {c['column']}: source {c['source']!r}  postgresql {c['postgresql']!r}")
        else:
            extra = {k: v for k, v in d.items() if k not in ("table", "kind", "key", "row")}
            lines.append(head + (f" {json.dumps(extra, ensure_ascii=False, default=str)}" if extra else ""))
    return lines


def cmd_validate(args, cfg) -> int:
    live = (cfg.sources.emails_db, cfg.sources.auth_db)
    result = run_validate(
        cfg.conninfo(), cfg.runs_dir, source=args.source, emails_db=args.emails_db, auth_db=args.auth_db,
        progress=lambda message: print(message, file=sys.stderr, flush=True), live_paths=live,
    )
    for line in summary_lines(result.report, args.max_diffs):
        print(line)
    status = "OK: every row and every column is accounted for" if result.ok else "FAILED: differences found"
    print(f"\nvalidate {status} ({result.report['seconds']['total']} s); report: {result.report['report_path']}")
    return 0 if result.ok else 1


def add_commands(subparsers) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="compare every row and column of PostgreSQL with the SQLite source",
        description="Compare every row and every column of mail.* with the snapshot of the last load "
        "(or the live files): counts per table and month, digests per bucket, then each differing "
        "row and column by name. Exit 0 only when everything is accounted for and equal.",
    )
    parser.add_argument("--source", choices=("snapshot", "live"), default="snapshot",
                        help="the last load's snapshot (default) or the live files, opened read-only")
    parser.add_argument("--emails-db", help="emails.db to compare with instead")
    parser.add_argument("--auth-db", help="auth.db to compare with instead")
    parser.add_argument("--max-diffs", type=int, default=20, help="differences to print (all are in validate.json)")
    parser.set_defaults(func=cmd_validate)
