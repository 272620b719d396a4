"""`mailmig rollback`: back to SQLite, keeping every email PostgreSQL received.

Pre-checks: one switch at a time; the application is on `postgres` (on `sqlite` there
is nothing to do: a second rollback changes nothing); reverse capture installed and the
reverse sync started by the cut-over. Before the pause, the reverse sync catches up
(`cutover.catch_up_timeout`, 120 s), so the pause only carries the last seconds.

The pause (hard limit as the cut-over's): pause writes; drain the reverse changes to the
last one (every transaction that finished before the pause); switch to
`cutover.rollback_to` (sqlite) at the resume; resume. Afterwards the forward sync keeps
PostgreSQL level with SQLite again (its capture never saw the reverse writes), so a
validation passes and a later cut-over can run.
"""

from __future__ import annotations

import time
from pathlib import Path

import psycopg

from mailmig import faults, queries
from mailmig.reverse_sync import DrainTimeout, ReverseSync, ReverseSyncError, capture_status
from mailmig.switch.procedure import Aborted, Frame, Outcome, Refused, Settings
from mailmig.switch.writes import WritesError


class Rollback(Frame):
    def __init__(self, conninfo: str, emails_db: Path, auth_db: Path, runs_dir: Path, writes, settings: Settings,
                 progress=None):
        super().__init__("rollback", conninfo, runs_dir, writes, settings, progress)
        self.emails_db, self.auth_db = Path(emails_db), Path(auth_db)

    def checks(self) -> bool:
        self.say(f"rollback {self.run_record.id}: pre-checks")
        if not self.check_mode(("postgres", "dual", None), already=self._last_switch):
            return False
        status = capture_status(self.conninfo)
        self.check("reverse capture", status["installed"],
                   "installed" if status["installed"] else "NOT installed: " + "; ".join(status["missing"] or []))
        self.check("reverse sync", bool(status["sync_started"]) and status["sync_install_id"] == status["install_id"],
                   f"started by the cut-over; {status['backlog']:,} changes not yet carried"
                   if status["sync_started"] else "not started: no cut-over recorded a start (nothing to roll back)")
        return True

    def _last_switch(self) -> str:
        try:
            with psycopg.connect(self.conninfo, autocommit=True, connect_timeout=3) as conn:
                row = conn.execute(queries.load("switch_last_switched"), {"kind": "rollback"}).fetchone()
        except psycopg.Error:
            return ""
        return f" (rolled back by {row[0]} at {row[1]:%Y-%m-%d %H:%M:%S}Z)" if row else ""

    def run(self) -> Outcome:
        try:
            self.take_lock()
            if not self.checks():
                self.outcome.outcome = "nothing_to_do"
                return self.finish()
            self.refuse_if_failed()
        except Refused as exc:
            self.outcome.outcome, self.outcome.reason = "refused", str(exc)
            return self.finish()
        sync = ReverseSync(self.conninfo, self.emails_db, self.auth_db)
        switched_requested = False
        try:
            try:
                with self.step("catch up the reverse sync (writes still flowing)") as detail:
                    detail.update(sync.drain(deadline=time.monotonic() + self.settings.catch_up_timeout_s))
            except (ReverseSyncError, psycopg.Error) as exc:
                self.outcome.outcome, self.outcome.reason = "refused", f"the reverse sync cannot catch up: {exc}"
                return self.finish()
            self.say(f"rollback: pausing writes (hard limit {self.settings.hard_limit_s:g} s)")
            try:
                self.start_pause()
                faults.point("rollback_paused")
                with self.step("drain the reverse changes to the last one") as detail:
                    faults.point("rollback_drain")
                    detail.update(sync.drain(deadline=self.deadline))
                self.check_limit("draining the reverse changes")
                with self.step(f"switch to {self.settings.rollback_to} (at the resume)") as detail:
                    switched_requested = True
                    detail.update(self.writes.switch(self.settings.rollback_to, self.remaining()))
                self.check_limit("switching")
            except (Aborted, DrainTimeout, ReverseSyncError, WritesError, psycopg.Error, faults.FaultInjected,
                    OSError) as exc:
                return self._abort(exc, switched_requested)
        finally:
            sync.close()
        try:
            released = self.resume()
        except WritesError as exc:
            self.outcome.outcome = "unknown"
            self.outcome.reason = f"the resume call failed after the switch was requested: {exc}; check " \
                                  "`mailmig control status`"
            return self.finish()
        if released.switched and released.mode == self.settings.rollback_to:
            self.outcome.outcome = "switched"
        else:
            self.outcome.outcome = "aborted"
            self.outcome.reason = (f"the writes resumed on {released.mode} (by {released.resumed_by})"
                                   + (f": {released.switch_error}" if released.switch_error else ""))
        return self.finish()

    def _abort(self, exc: BaseException, switched_requested: bool) -> Outcome:
        reason = self.abort_reason(exc)
        self.say(f"rollback ABORTED: {reason}")
        if switched_requested and self.outcome.from_mode:
            try:
                self.writes.switch(self.outcome.from_mode, 2.0)
            except WritesError:
                pass
        self.outcome.outcome, self.outcome.reason = "aborted", reason
        try:
            self.resume()
        except WritesError as resume_error:
            self.outcome.reason += f"; then the resume failed too: {resume_error}"
        return self.finish()


def run_rollback(conninfo, emails_db, auth_db, runs_dir, writes, settings: Settings, progress=None) -> Outcome:
    return Rollback(conninfo, emails_db, auth_db, runs_dir, writes, settings, progress).run()
