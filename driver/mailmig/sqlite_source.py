"""Reading the legacy SQLite files without losing a byte.

SQLite lets any column hold any storage class, and text may be invalid UTF-8 or hold NUL
(FIELD-NOTES). Connections made here return TEXT values as `SqliteText` (bytes that
remember they were TEXT) and BLOBs as plain `bytes`, so a value's storage class and its
exact bytes survive. `encode_value` turns one into the typed-JSON form of the contracts
(`{"t": typeof, "v" | "hex"}`), used by the load (hostile rows, rejects, repairs) and by
validate.
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass
from pathlib import Path


class SqliteText(bytes):
    """The bytes of a value whose SQLite storage class is TEXT."""

    __slots__ = ()


def quote_identifier(name: str) -> str:
    """A SQLite identifier (table or column name) quoted for composing SQL: the one place
    where that is done. Names come from the mapping or from a file's own catalogue, so a
    name holding a double quote (or anything else) must stay one identifier."""
    if "\x00" in name:
        raise ValueError(f"SQLite identifier {name!r} contains a NUL character")
    return '"' + name.replace('"', '""') + '"'


def column_list(columns) -> str:
    """Quoted column names joined for a SELECT list."""
    return ", ".join(quote_identifier(c) for c in columns)


def connect_readonly(path: Path | str) -> sqlite3.Connection:
    """Open a SQLite file read-only (the source is never changed), lossless text."""
    uri = Path(path).resolve().as_uri() + "?mode=ro"
    conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
    conn.text_factory = SqliteText
    return conn


def largest_assigned_id(conn: sqlite3.Connection, table: str) -> int | None:
    """The largest id SQLite ever assigned in `table` (AUTOINCREMENT's sqlite_sequence
    included: ids of deleted rows are never given again); None when the file has no such
    table."""
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone():
        return None
    largest = conn.execute(f"SELECT max(id) FROM {quote_identifier(table)}").fetchone()[0] or 0
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'").fetchone():
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)).fetchone()
        largest = max(largest, row[0] if row and row[0] else 0)
    return int(largest)


def typeof(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, SqliteText):
        return "text"
    if isinstance(value, bytes):
        return "blob"
    if isinstance(value, bool):  # never from SQLite, but be exact
        return "integer"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "real"
    if isinstance(value, str):
        return "text"
    raise TypeError(f"not a SQLite value: {type(value).__name__}")


def plain_text(value: bytes) -> str | None:
    """The str of text bytes PostgreSQL can hold (valid UTF-8, no NUL), else None."""
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if "\x00" in text else text


def encode_value(value) -> dict:
    """The typed-JSON form of one SQLite value; it loses nothing."""
    kind = typeof(value)
    if kind == "null":
        return {"t": "null"}
    if kind == "integer":
        return {"t": "integer", "v": int(value)}
    if kind == "real":
        if math.isfinite(value):
            return {"t": "real", "v": value}
        return {"t": "real", "v": "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")}
    if kind == "text":
        if isinstance(value, str):
            value = value.encode("utf-8")
        text = plain_text(value)
        return {"t": "text", "v": text} if text is not None else {"t": "text", "hex": value.hex()}
    return {"t": "blob", "hex": bytes(value).hex()}


KEY_CLASSES = ("null", "integer", "real", "text", "hex", "blob")
_KEY_PREFIXES = tuple(f"{c}:".encode() for c in KEY_CLASSES)


def native_key(value, key_kind: str | None) -> bool:
    """Is this key of its column's own storage class, so that it is named by itself? An
    integer in an integer key column; valid UTF-8 text without NUL that does not start like
    a prefixed name in a text key column. key_kind None: either (a caller that does not
    know the column's kind names the keys of the column's own class the same way)."""
    if key_kind == "int" or (key_kind is None and type(value) is int):
        return type(value) is int
    return (isinstance(value, SqliteText) and not value.startswith(_KEY_PREFIXES)
            and plain_text(value) is not None)


def source_key(value, key_kind: str | None = None, rowid: int | None = None) -> str:
    """A source primary key as text (contracts: "Source keys"), one name per source row.

    A key of its column's own storage class is named by itself: an integer key by its
    digits, a text key by its text. Any other key names its storage class first, so that
    an integer 5, a text '5' and a blob '5' stay three keys: `integer:5`, `text:5`,
    `real:0.5`, `hex:<bytes>` (text that is not UTF-8, or holds NUL), `blob:<bytes>`, and
    `null:<rowid>` (SQLite lets a TEXT PRIMARY KEY be NULL, in any number of rows)."""
    if native_key(value, key_kind):
        return str(value) if type(value) is int else bytes(value).decode("utf-8")
    if value is None:
        if rowid is None:
            raise ValueError("a NULL key is named by its rowid, which was not given")
        return f"null:{rowid}"
    encoded = encode_value(value)
    if encoded["t"] == "integer":
        return f"integer:{encoded['v']}"
    if encoded["t"] == "real":
        return f"real:{encoded['v'] if isinstance(encoded['v'], str) else repr(encoded['v'])}"
    if encoded["t"] == "text":
        return f"text:{encoded['v']}" if "v" in encoded else f"hex:{encoded['hex']}"
    return f"blob:{encoded['hex']}"


# -- from a source key's name back to the SQLite row ------------------------------------

class TextBytes(bytes):
    """The bytes of a TEXT key that is not UTF-8 (bound, then cast back to TEXT)."""


@dataclass(frozen=True)
class NullKey:
    rowid: int


NO_SUCH_KEY = object()


def key_from_name(name: str, kind: str | None):
    """The SQLite value a source key names (the inverse of source_key), or NO_SUCH_KEY
    when no row of that key column can have it."""
    prefix, sep, rest = name.partition(":")
    try:
        if sep and prefix in ("null", "integer", "real", "text", "hex", "blob"):
            if prefix == "null":
                return NullKey(int(rest))
            if prefix == "integer":
                return int(rest)
            if prefix == "real":
                return float(rest)
            if prefix == "text":
                return rest
            if prefix == "hex":
                return TextBytes(bytes.fromhex(rest))
            return sqlite3.Binary(bytes.fromhex(rest))
        return int(name) if kind == "int" else name
    except ValueError:
        return NO_SUCH_KEY


def rows_of_key_names(key_column: str, names, kind: str | None, chunk: int = 500) -> list[tuple[str, list]]:
    """WHERE conditions, with their parameters, that find the rows of these source key
    names in a table whose (quoted) key column is `key_column`: `key IN (...)` by chunks,
    a text key that is not UTF-8 bound as bytes and cast back to TEXT, and one
    `rowid = ? AND key IS NULL` per `null:<rowid>`. Names no row can have are left out."""
    values, nulls = [], []
    for name in names:
        value = key_from_name(name, kind)
        if value is NO_SUCH_KEY:
            continue
        (nulls if isinstance(value, NullKey) else values).append(value)
    out = []
    for start in range(0, len(values), chunk):
        part = values[start:start + chunk]
        marks = ", ".join("CAST(? AS TEXT)" if isinstance(p, TextBytes) else "?" for p in part)
        out.append((f"{key_column} IN ({marks})", [bytes(p) if isinstance(p, TextBytes) else p for p in part]))
    for null in nulls:  # a NULL key is named by its rowid
        out.append((f"rowid = ? AND {key_column} IS NULL", [null.rowid]))
    return out
