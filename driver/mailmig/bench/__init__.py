"""`mailmig bench` (make bench): SQLite against PostgreSQL through the same store layer,
side by side, on the same generated data, in one run. See command.py for the run,
workloads.py for what each figure includes, verdict.py for the judgments."""

from __future__ import annotations


def add_commands(subparsers) -> None:
    from mailmig.bench.command import add_commands as add

    add(subparsers)
