"""The cut-over (SQLite to PostgreSQL) and the rollback (back), each with a write pause
measured in seconds, a hard limit, and a record.

Both run the same frame:

1. **pre-checks**, all of them, each printed with its figure; any failure refuses the
   switch before anything is paused (outcome `refused`, exit 1). One switch at a time:
   a session advisory lock, so a second request while one runs is refused, naming it.
2. **the pause**: writes are held (the service's control call or the pause hook); from
   here a hard limit (`cutover.hard_limit`, 5 s) runs. Each step gets what is left of it;
   past it, or on any failure, the writes resume on the old store, nothing is switched,
   and the reason is printed and recorded (outcome `aborted`, exit 1).
3. **the switch** (the service applies it at the resume, after checking the new store
   once more), **the resume**, and the measured pause: the service's figure, from the
   first held write to the last released one (outcome `switched`, exit 0).

Every attempt is written to `runs/<run id>/<kind>.json` and `migration.switches`.
"""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import psycopg

from mailmig import faults, queries, runs
from mailmig.sqlite_source import largest_assigned_id
from mailmig.switch.writes import Released, WritesError

LOCK_KEY = 0x6D61696C73776368  # "mailswch": one cut-over or rollback at a time per database
BUSY_MARGIN_S = 0.05  # time kept back from the hard limit for the resume call itself


class Refused(RuntimeError):
    """A pre-check failed; nothing was paused or changed."""


class Aborted(RuntimeError):
    """A step of the pause failed or the hard limit passed; writes resumed on the old store."""


@dataclass
class Settings:
    hard_limit_s: float = 5.0
    max_sync_lag_s: float = 1.5
    max_heartbeat_age_s: float = 5.0
    catch_up_timeout_s: float = 120.0
    rollback_to: str = "sqlite"

    @classmethod
    def from_config(cls, cfg) -> "Settings":
        c = cfg.raw["cutover"]
        return cls(c["hard_limit"], c["max_sync_lag"], c["max_heartbeat_age"], c["catch_up_timeout"],
                   c["rollback_to"])


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class Step:
    name: str
    at_s: float | None  # since the pause began (None: before it)
    seconds: float
    ok: bool = True
    detail: dict = field(default_factory=dict)


@dataclass
class Outcome:
    kind: str
    run_id: str
    outcome: str  # switched | aborted | refused | nothing_to_do | unknown
    from_mode: str | None
    to_mode: str
    reason: str | None = None
    checks: list[Check] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    released: Released | None = None
    report_path: str | None = None
    recorded_in_postgresql: bool = False

    @property
    def ok(self) -> bool:
        return self.outcome in ("switched", "nothing_to_do")

    def report(self) -> dict:
        released = asdict(self.released) if self.released else None
        return {
            "kind": self.kind, "run_id": self.run_id, "outcome": self.outcome, "from_mode": self.from_mode,
            "to_mode": self.to_mode, "reason": self.reason, "checks": [asdict(c) for c in self.checks],
            "steps": [asdict(s) for s in self.steps], "released": released,
            "write_pause_seconds": self.released.write_pause_s if self.released else None,
            "paused_seconds": self.released.paused_s if self.released else None,
        }


class Frame:
    """What a cut-over and a rollback share: the lock, the clock, the steps, the record."""

    def __init__(self, kind: str, conninfo: str, runs_dir: Path, writes, settings: Settings,
                 progress: Callable[[str], None] | None):
        self.kind = kind
        self.conninfo = conninfo
        self.writes = writes
        self.settings = settings
        self.say = progress or (lambda message: None)
        self.run_record = runs.new_run(Path(runs_dir), kind)
        self.outcome = Outcome(kind, self.run_record.id, "running", None,
                               "postgres" if kind == "cutover" else settings.rollback_to)
        self.pause_started: float | None = None
        self.deadline: float | None = None
        self.lock_conn: psycopg.Connection | None = None

    # -- the lock and the record -----------------------------------------------------
    def take_lock(self) -> None:
        conn = psycopg.connect(self.conninfo, autocommit=True, application_name=f"mailmig {self.kind} {self.run_record.id}")
        got = conn.execute(queries.load("switch_lock_try"), {"key": LOCK_KEY}).fetchone()[0]
        if not got:
            holder = conn.execute(queries.load("switch_lock_holder"), {"key": LOCK_KEY}).fetchone()
            conn.close()
            who = f"{holder[0]} (pid {holder[1]}, since {holder[2]:%H:%M:%S}Z)" if holder else "another session"
            raise Refused(f"a cut-over or rollback is running: {who}; one at a time")
        self.lock_conn = conn
        faults.point(f"{self.kind}_locked")
        try:
            conn.execute(queries.load("switch_record_start"),
                         {"run_id": self.run_record.id, "kind": self.kind, "to_mode": self.outcome.to_mode})
        except psycopg.Error as exc:
            raise Refused(f"cannot record the {self.kind} in migration.switches: {exc}") from None

    def finish(self) -> Outcome:
        report = self.outcome.report()
        path = self.run_record.write_json(f"{self.kind}.json", report)
        self.outcome.report_path = str(path)
        runs.mark_latest(self.run_record.dir.parent, self.run_record)
        released = self.outcome.released
        try:
            conn = self.lock_conn if self.lock_conn and not self.lock_conn.closed else \
                psycopg.connect(self.conninfo, autocommit=True, connect_timeout=3)
            conn.execute(queries.load("switch_record_finish"), {
                "run_id": self.run_record.id, "kind": self.kind, "outcome": self.outcome.outcome,
                "from_mode": self.outcome.from_mode, "to_mode": self.outcome.to_mode,
                "write_pause_s": released.write_pause_s if released else None,
                "paused_s": released.paused_s if released else None, "reason": self.outcome.reason,
                "report": json.dumps(report, default=str)})
            self.outcome.recorded_in_postgresql = True
        except psycopg.Error as exc:
            self.say(f"note: not recorded in migration.switches ({str(exc).strip().splitlines()[0]}); "
                     f"the report is {path}")
        finally:
            for conn in {self.lock_conn} - {None}:
                try:
                    conn.close()
                except psycopg.Error:
                    pass
        return self.outcome

    # -- checks and steps ------------------------------------------------------------------
    def check(self, name: str, ok: bool, detail: str) -> None:
        self.outcome.checks.append(Check(name, ok, detail))
        self.say(f"  {'ok  ' if ok else 'FAIL'} {name}: {detail}")

    def check_mode(self, leave_from: tuple[str | None, ...], already: Callable[[], str] = lambda: "") -> bool:
        """The first pre-check of both: the application's current mode. False when it is
        on the target mode already (nothing to do; `already()` adds to the line); a mode
        outside `leave_from` fails the check; unreadable modes fail it and go on."""
        try:
            mode = self.writes.current_mode()
        except WritesError as exc:
            self.check("application", False, str(exc))
            return True
        self.outcome.from_mode = mode
        if mode == self.outcome.to_mode:
            self.check("application", True, f"on {mode} already{already()}: nothing to do")
            return False
        self.check("application", mode in leave_from,
                   f"{self.writes.describe()}: mode {mode or 'set by the switch hook'}")
        return True

    def refuse_if_failed(self) -> None:
        failed = [c for c in self.outcome.checks if not c.ok]
        if failed:
            raise Refused("; ".join(f"{c.name}: {c.detail}" for c in failed))

    def abort_reason(self, exc: BaseException) -> str:
        """Why the pause failed, in one line; says so when the hard limit had passed."""
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if self.deadline is not None and time.monotonic() >= self.deadline - BUSY_MARGIN_S \
                and "hard limit" not in reason:
            reason = (f"hard limit of {self.settings.hard_limit_s:g} s passed "
                      f"({time.monotonic() - self.pause_started:.3f} s into the pause): {reason}")
        return reason

    def remaining(self) -> float:
        return self.deadline - time.monotonic() - BUSY_MARGIN_S

    def check_limit(self, what: str) -> None:
        if self.deadline is not None and time.monotonic() >= self.deadline - BUSY_MARGIN_S:
            raise Aborted(f"hard limit of {self.settings.hard_limit_s:g} s passed {what} "
                          f"({time.monotonic() - self.pause_started:.3f} s into the pause)")

    @contextmanager
    def step(self, name: str):
        started = time.monotonic()
        at = None if self.pause_started is None else round(started - self.pause_started, 6)
        record = Step(name, at, 0.0)
        self.outcome.steps.append(record)
        try:
            yield record.detail
        except BaseException as exc:
            record.ok = False
            record.detail.setdefault("error", str(exc))
            raise
        finally:
            record.seconds = round(time.monotonic() - started, 6)
            when = "  before" if record.at_s is None else f"{record.at_s:8.3f}"
            self.say(f"  {when} s  {name}: {record.seconds * 1000:.1f} ms"
                     + ("" if record.ok else f"  FAILED: {record.detail.get('error')}"))

    def start_pause(self) -> None:
        self.pause_started = time.monotonic()
        self.deadline = self.pause_started + self.settings.hard_limit_s
        with self.step("pause writes") as detail:
            detail.update(self.writes.pause(self.settings.hard_limit_s))

    def resume(self) -> Released:
        with self.step("resume writes") as detail:
            released = self.writes.resume()
            detail.update({"mode": released.mode, "switched": released.switched,
                           "write_pause_s": released.write_pause_s, "resumed_by": released.resumed_by})
        self.outcome.released = released
        return released


# -- the SQLite write lock (the cut-over: no writer of any kind during the switch) ------


class SqliteWriteLock:
    """BEGIN IMMEDIATE on each legacy file: no process can write them until released
    (readers, the sync's among them, go on under WAL)."""

    def __init__(self, paths: list[Path]):
        self.paths = [Path(p) for p in paths]
        self.conns: list[sqlite3.Connection] = []

    def take(self, timeout_s: float) -> None:
        for path in self.paths:
            conn = sqlite3.connect(path, isolation_level=None, timeout=max(0.0, timeout_s), check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {max(0, int(timeout_s * 1000))}")
            self.conns.append(conn)
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise Aborted(f"{path}: SQLite's write lock not taken within {timeout_s:.3f} s: {exc}") from None

    def largest_id(self, table: str) -> int:
        """The largest id the file ever assigned to `table` (AUTOINCREMENT's sqlite_sequence
        included: ids of deleted rows are never given again)."""
        for conn in self.conns:
            largest = largest_assigned_id(conn, table)
            if largest is not None:
                return largest
        raise Aborted(f"no file holds the table {table}")

    def release(self) -> None:
        for conn in self.conns:
            try:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            finally:
                conn.close()
        self.conns = []
