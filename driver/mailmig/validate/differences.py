"""Differences found by validate: counted exactly, the first MAX_STORED_DIFFS kept whole,
values shown for people."""

from __future__ import annotations

import json
import struct
import threading

MAX_STORED_DIFFS = 10_000  # differences kept in validate.json (counts are always exact)
DISPLAY_CHARS = 80


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
        self.found: list[tuple[str, str, str]] = []  # (table, kind, key) of every one, for split()
        self.lock = threading.Lock()

    def add(self, table: str, kind: str, key, **detail) -> None:
        with self.lock:
            per_table = self.counts.setdefault(table, {})
            per_table[kind] = per_table.get(kind, 0) + 1
            self.found.append((table, kind, str(key)))
            if len(self.items) < MAX_STORED_DIFFS:
                self.items.append({"table": table, "kind": kind, "key": key, **detail})

    def count(self, table: str, kind: str) -> int:
        return self.counts.get(table, {}).get(kind, 0)

    def split(self, keys: set[tuple[str, str]]) -> "Differences":
        """Move the differences of the given (table, key) pairs out into a Differences of
        their own (validate --source live: rows changed after the sync position)."""
        moved = Differences()
        with self.lock:
            kept_found, kept_items = [], []
            for table, kind, key in self.found:
                if (table, key) in keys:
                    per_table = moved.counts.setdefault(table, {})
                    per_table[kind] = per_table.get(kind, 0) + 1
                    moved.found.append((table, kind, key))
                else:
                    kept_found.append((table, kind, key))
            for item in self.items:
                (moved.items if (item["table"], str(item["key"])) in keys else kept_items).append(item)
            self.found, self.items = kept_found, kept_items
            self.counts = {}
            for table, kind, _ in kept_found:
                per_table = self.counts.setdefault(table, {})
                per_table[kind] = per_table.get(kind, 0) + 1
        return moved


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

