"""The stage clock of a load: when each stage began, how long it took, its rows and bytes."""

from __future__ import annotations

import time


class Stages:
    """Times each stage and keeps its figures for the report."""

    def __init__(self, progress):
        self.progress = progress
        self.items: list[dict] = []
        self.origin = time.monotonic()

    def run(self, name: str, fn, rows=None, nbytes=None):
        """Run one stage; stages may run at once on threads (`start` tells when each began)."""
        self.progress(f"== {name}")
        started = time.monotonic()
        result = fn()
        seconds = time.monotonic() - started
        self.record(name, seconds, rows(result) if callable(rows) else rows,
                    nbytes(result) if callable(nbytes) else nbytes, start=started - self.origin)
        return result

    def record(self, name, seconds, rows=None, nbytes=None, start=None):
        item = {"stage": name, "start": round(start, 3) if start is not None else None,
                "seconds": round(seconds, 3), "rows": rows, "bytes": nbytes,
                "rows_per_s": round(rows / seconds) if rows and seconds > 0 else None,
                "mb_per_s": round(nbytes / 1e6 / seconds, 1) if nbytes and seconds > 0 else None}
        self.items.append(item)
        self.progress(f"   {name}: {seconds:.1f} s"
                      + (f", {rows:,} rows" if rows is not None else "")
                      + (f", {nbytes / 1e6:,.1f} MB" if nbytes else ""))
