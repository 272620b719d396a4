"""Progress of the staging stage: the size of the staging tables while the loader fills them."""

from __future__ import annotations

import threading

import psycopg

from mailmig import queries


class StagingProgress(threading.Thread):
    """Prints the size of the staging tables while pgloader or COPY fills them."""

    def __init__(self, conninfo: str, tables: list[str], progress, every: float = 5.0):
        super().__init__(daemon=True)
        self.conninfo, self.tables, self.progress, self.every = conninfo, tables, progress, every
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            with psycopg.connect(self.conninfo, autocommit=True) as conn:
                while not self.stop.wait(self.every):
                    parts = []
                    for t, size, copying in conn.execute(queries.load("staging_progress"),
                                                         {"tables": self.tables}):
                        parts.append(f"{t} {size / 1e6:,.0f} MB"
                                     + (f" (+{copying:,} rows in flight)" if copying else ""))
                    self.progress("   staging: " + ", ".join(parts))
        except psycopg.Error:
            return

