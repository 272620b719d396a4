"""jsonb's canonical text, emulated: what PostgreSQL prints for `text::jsonb`.

The JSON column is compared by meaning: the last of duplicate keys wins, keys are
ordered by length then bytes, `{"a": 1, "b": [1, 2]}` spacing, numbers as numeric
prints them, strings escaped as PostgreSQL's escape_json escapes them.
"""

from __future__ import annotations

import json
import re
import sys
from decimal import Decimal, InvalidOperation


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
    written less the exponent (1.50 -> 1.50, 1e2 -> 100, 1.5e-3 -> 0.0015), no -0.
    Digit strings are never turned into ints (Python refuses more than 4300 digits)."""
    sign, digits, exponent = Decimal(text).as_tuple()
    magnitude = "".join(map(str, digits)).lstrip("0") or "0"
    if exponent >= 0:
        body = magnitude + ("0" * exponent if magnitude != "0" else "")
    else:
        padded = magnitude.rjust(1 - exponent, "0")
        body = padded[:exponent] + "." + padded[exponent:]
    return ("-" if sign and magnitude != "0" else "") + body


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



JSON_MAX_DEPTH = 1000  # the rule: deeper JSON is repaired (PostgreSQL's own limit varies)
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")

# JSON up to JSON_MAX_DEPTH levels must parse and render here: both recurse once a level
if sys.getrecursionlimit() < 4 * JSON_MAX_DEPTH:
    sys.setrecursionlimit(4 * JSON_MAX_DEPTH)


def json_depth(text: str) -> int:
    """How deeply a JSON text nests arrays and objects, brackets in strings not counted
    (migration.json_depth)."""
    depth = deepest = 0
    for char in _NOT_BRACKET.sub("", _JSON_STRING.sub("", text)):
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest
