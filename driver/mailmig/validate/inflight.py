"""Rows in flight: what validate --source live must not call a difference while the sync
follows the live files.

The live files change while validate reads them; the sync applies each change a moment
later. A row whose key changed after the sync position is *in flight*: its SQLite and
PostgreSQL sides may differ for now, and that says nothing about the migration. The keys
in flight during one validation are those the sync applied after the sync point taken
when the validation began (migration.sync_keys_since), plus those still waiting in the
changelogs at its end (changelog rows past the position: read after the position, so
that nothing falls between the two). Their differences are reported apart, never mixed
with the real ones; a cut-over checks exactly these keys again in its write pause.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mailmig import capture, queries
from mailmig.mapping import load_mapping
from mailmig.sqlite_source import connect_readonly, source_key


@dataclass
class SyncPoint:
    """The sync's state when a validation began."""

    batch_id: int  # migration.sync_point()
    positions: dict[str, tuple[str, int]] = field(default_factory=dict)  # source -> (install id, seq)


def sync_point(conn) -> SyncPoint | None:
    """The sync point now, or None when no sync follows this database (no position)."""
    if not conn.execute(queries.load("sync_bookkeeping_exists")).fetchone()[0]:
        return None
    positions = {source: (install_id, seq)
                 for source, install_id, seq in conn.execute(queries.load("validate_sync_positions"))}
    if not positions:
        return None
    return SyncPoint(conn.execute(queries.load("validate_sync_point")).fetchone()[0], positions)


def keys_in_flight(conn, point: SyncPoint, files: dict[str, Path]) -> set[tuple[str, str]]:
    """(table, source key) of every row that changed after `point`: applied since by the
    sync, or still waiting in a changelog past the current position. `files`: source
    ('emails_db', 'auth_db') -> the live file."""
    positions = {source: (install_id, seq)
                 for source, install_id, seq in conn.execute(queries.load("validate_sync_positions"))}
    keys: set[tuple[str, str]] = set()
    tables = load_mapping()
    for source, path in files.items():
        if source not in positions:
            continue
        install_id, seq = positions[source]
        reader = connect_readonly(path)
        try:
            state = capture.read_state(reader, Path(path), capture.tables_of(tables, source))
            if state.installed and state.install_id == install_id:
                kinds = {t.name: t.columns[t.key] for t in tables}
                for table, key in reader.execute(
                        f"SELECT DISTINCT source_table, source_key FROM {capture.CHANGELOG} WHERE seq > ?", (seq,)):
                    name = table.decode() if isinstance(table, bytes) else table
                    keys.add((name, source_key(key, kinds.get(name))))
        finally:
            reader.close()
    keys.update((table, key) for table, key in conn.execute(queries.load("switch_keys_since"),
                                                            {"point": point.batch_id}))
    return keys
