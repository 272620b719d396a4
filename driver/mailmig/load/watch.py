"""Progress of the staging stage: the rows and size of the staging tables while the loader
fills them (a bar on a terminal, a line every 5 s elsewhere)."""

from __future__ import annotations

import threading

import psycopg

from mailmig import console, queries


class StagingProgress(threading.Thread):
    """Watches staging while pgloader or COPY fills it: the size of each table and the rows
    of the COPY in flight. With `expected` (the COPY loader: one COPY per table) the rows
    staged so far, committed (table statistics) plus in flight, against it; pgloader's
    rows are not countable from outside until it commits at the end, so its bar only
    shows that it works, and the sizes."""

    def __init__(self, conninfo: str, tables: list[str], progress, expected: int | None = None,
                 every: float = 5.0):
        super().__init__(daemon=True)
        self.conninfo, self.tables, self.progress, self.every = conninfo, tables, progress, every
        self.expected = expected
        self.stop = threading.Event()

    def run(self) -> None:
        poll = 0.5 if isinstance(self.progress, console.Say) and self.progress.live else self.every
        # no last line: the stage counts every table exactly when the loader is done
        bar = console.bar(self.progress, "staging", self.expected, every=self.every, final_line=False)
        try:
            with bar, psycopg.connect(self.conninfo, autocommit=True) as conn:
                while not self.stop.wait(poll):
                    staged = in_flight = size = 0
                    for _, table_bytes, committed, copying in conn.execute(
                            queries.load("staging_progress"), {"tables": self.tables}):
                        staged, in_flight, size = staged + committed + copying, in_flight + copying, size + table_bytes
                    note = f"({size / 1e6:,.0f} MB" + (f", {in_flight:,} rows in a COPY)" if in_flight else ")")
                    bar.update(min(staged, self.expected) if self.expected is not None else 0, note)
        except psycopg.Error:
            return
