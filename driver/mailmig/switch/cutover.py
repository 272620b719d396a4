"""`mailmig cutover`: SQLite to PostgreSQL in a write pause of seconds.

Pre-checks (all printed; any failure refuses): one switch at a time; the application is
on `sqlite` or `dual` (on `postgres` there is nothing to do); change capture installed
in both files and the sync following them, its heartbeat fresh and its lag below
`cutover.max_sync_lag` (1.5 s); the last full validation passed and the keys changed
since can be listed; reverse capture installed (so that a rollback keeps what
PostgreSQL receives); the sequences can be set.

The pause, each step timed (the hard limit runs from the pause call):
pause writes; take SQLite's write lock (no writer of any kind until the switch);
drain the sync to the last change; set the sequences past the largest ids (SQLite's
sqlite_sequence included); validate the keys changed since the last full validation;
start the reverse sync here; switch to postgres (taking effect at the resume); release
SQLite's lock; resume. Any failure or the hard limit: writes resume on the old store,
nothing is switched, the reason is printed and recorded.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import psycopg

from mailmig import faults, queries, reverse_sync, runs
from mailmig.switch.procedure import Aborted, Frame, Outcome, Refused, Settings, SqliteWriteLock
from mailmig.switch.writes import WritesError
from mailmig.validate import validate_keys

SOURCES = ("emails_db", "auth_db")


def last_validation(runs_dir: Path) -> dict | None:
    run = runs.latest(Path(runs_dir), "validate")
    if run is None or not (run.dir / "validate.json").is_file():
        return None
    report = json.loads((run.dir / "validate.json").read_text())
    report.setdefault("run_id", run.id)
    return report


DATA_KINDS = ("missing", "extra", "changed")  # row differences (not bookkeeping problems)


def judge_validation(conn, report: dict) -> tuple[bool, str]:
    """Did this full validation pass, for a cut-over? With the sync following a live
    service, a validation sees the newest rows before the sync applied them; such a row is
    accepted only if the sync applied its key after the validation's sync point, because
    the cut-over validates exactly those keys again in its pause. Any other difference,
    any bookkeeping problem, or a truncated list of differences fails it."""
    point = report.get("sync_point")
    name = f"{report.get('run_id')} ({(report.get('source') or {}).get('kind', '?')})"
    if point is None:
        return False, (f"{name} recorded no sync point (a validation from before the live sync): validate again "
                       "with `mailmig validate --source live`")
    try:
        since = {(t, k) for t, k in conn.execute(queries.load("switch_keys_since"), {"point": point})}
    except psycopg.Error as exc:
        return False, f"{name}: {str(exc).strip().splitlines()[0]}"
    changed_since = f"{len(since):,} keys changed since its sync batch {point}, checked again in the pause"
    if report.get("ok"):
        return True, f"{name} passed; {changed_since}"
    differences = report.get("differences") or []
    if report.get("differences_truncated"):
        return False, f"{name} FAILED with more differences than it lists: fix, then validate again"
    other = [d for d in differences if d.get("kind") not in DATA_KINDS or (d["table"], str(d["key"])) not in since]
    if other:
        first = other[0]
        return False, (f"{name} FAILED: {len(other):,} differences not explained by later changes, e.g. "
                       f"{first.get('table')} {first.get('key')} {first.get('kind')}: fix, then validate again")
    return True, (f"{name} passed but for {len(differences):,} rows the sync applied after it; {changed_since}")


class Cutover(Frame):
    def __init__(self, conninfo: str, emails_db: Path, auth_db: Path, runs_dir: Path, writes, settings: Settings,
                 sync_settings: dict, progress=None):
        super().__init__("cutover", conninfo, runs_dir, writes, settings, progress)
        self.emails_db, self.auth_db = Path(emails_db), Path(auth_db)
        self.runs_dir = Path(runs_dir)
        self.sync_settings = sync_settings
        self.validation: dict | None = None

    # -- pre-checks -------------------------------------------------------------------
    def checks(self) -> bool:
        """Run every pre-check; False when there is nothing to do (already on postgres)."""
        self.say(f"cutover {self.run_record.id}: pre-checks")
        if not self.check_mode(("sqlite", "dual", None)):
            return False
        self._check_capture()
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            self._check_sync(conn)
            self._check_validation(conn)
            self._check_reverse_capture(conn)
            self._check_sequences(conn)
        return True

    def _check_capture(self) -> None:
        try:
            from mailmig import capture
        except ImportError:  # a build without the live sync (issue 12)
            self.check("capture", False, "the live sync (mailmig capture, mailmig sync) is not in this build")
            return
        from mailmig.mapping import load_mapping
        from mailmig.sqlite_source import connect_readonly

        tables = load_mapping()
        for source, path in zip(SOURCES, (self.emails_db, self.auth_db)):
            try:
                conn = connect_readonly(path)
                try:
                    state = capture.read_state(conn, path, capture.tables_of(tables, source))
                finally:
                    conn.close()
            except Exception as exc:  # a missing or unreadable file
                self.check(f"capture {path.name}", False, f"{path}: {exc}")
                continue
            self.check(f"capture {path.name}", state.installed,
                       f"{state.describe()}, {state.changelog_rows:,} changelog rows")

    def _check_sync(self, conn) -> None:
        rows = {r[0]: r for r in conn.execute(queries.load("switch_sync_status")).fetchall()}
        s = self.settings
        for source in SOURCES:
            row = rows.get(source)
            if row is None:
                self.check(f"sync {source}", False, "no sync position (load with capture installed, then "
                                                    "`mailmig sync --follow`)")
                continue
            _, following, beat_age, lag = row
            ok = bool(following) and beat_age is not None and beat_age <= s.max_heartbeat_age_s \
                and lag is not None and lag <= s.max_sync_lag_s
            beat = "no heartbeat" if beat_age is None else f"heartbeat {beat_age:.1f} s ago"
            self.check(f"sync {source}", ok,
                       f"{'following' if following else 'NOT following (start `mailmig sync --follow`)'}, "
                       f"{beat} (at most {s.max_heartbeat_age_s:g}), lag "
                       f"{'?' if lag is None else f'{lag:.2f}'} s (at most {s.max_sync_lag_s:g})")

    def _check_validation(self, conn) -> None:
        report = last_validation(self.runs_dir)
        if report is None:
            self.check("last full validation", False, f"none in {self.runs_dir} (run `mailmig validate "
                                                      "--source live` with the sync following)")
            return
        ok, detail = judge_validation(conn, report)
        if ok:
            self.validation = report
        self.check("last full validation", ok, detail)

    def _check_reverse_capture(self, conn) -> None:
        installed, missing = conn.execute(queries.load("switch_reverse_capture_state")).fetchone()
        self.check("reverse capture", installed,
                   "installed (a rollback keeps what PostgreSQL receives)" if installed else
                   "not installed (`mailmig reverse-capture install`)" + (f": {'; '.join(missing)}" if missing else ""))

    def _check_sequences(self, conn) -> None:
        settable, detail = conn.execute(queries.load("switch_sequences_settable")).fetchone()
        self.check("sequences", settable, detail)

    # -- the pause ----------------------------------------------------------------------
    def run(self) -> Outcome:
        lock = SqliteWriteLock([self.emails_db, self.auth_db])
        switched_requested = False
        try:
            self.take_lock()
            if not self.checks():
                self.outcome.outcome = "nothing_to_do"
                return self.finish()
            self.refuse_if_failed()
        except Refused as exc:
            self.outcome.outcome, self.outcome.reason = "refused", str(exc)
            return self.finish()
        self.say(f"cutover: pausing writes (hard limit {self.settings.hard_limit_s:g} s)")
        try:
            self.start_pause()
            faults.point("cutover_paused")
            with self.step("take SQLite's write lock"):
                lock.take(self.remaining())
            self.check_limit("taking SQLite's write lock")
            with self.step("drain the sync to the last change") as detail:
                faults.point("cutover_drain")
                detail.update(self._drain())
            self.check_limit("draining the sync")
            with self.step("sequences past the largest ids") as detail:
                detail.update(self._sequences(lock))
            with self.step("validate the keys changed since the last full validation") as detail:
                detail.update(self._validate_changed())
            self.check_limit("validating the changed keys")
            with self.step("start the reverse sync here") as detail:
                detail.update(reverse_sync.start(self.conninfo))
            self.check_limit("before the switch")
            with self.step("switch to postgres (at the resume)") as detail:
                switched_requested = True
                detail.update(self.writes.switch("postgres", self.remaining()))
            faults.point("cutover_switch_requested")
            self.check_limit("switching")
        except (Aborted, WritesError, psycopg.Error, faults.FaultInjected, OSError, RuntimeError) as exc:
            return self._abort(exc, lock, switched_requested)
        lock.release()
        try:
            released = self.resume()
        except WritesError as exc:
            self.outcome.outcome = "unknown"
            self.outcome.reason = f"the resume call failed after the switch was requested: {exc}; check " \
                                  "`mailmig control status` (the service applies a switch only at a resume)"
            return self.finish()
        if released.switched and released.mode == "postgres":
            self.outcome.outcome = "switched"
        else:
            self.outcome.outcome = "aborted"
            self.outcome.reason = (f"the writes resumed on {released.mode} (by {released.resumed_by})"
                                   + (f": {released.switch_error}" if released.switch_error else ""))
        return self.finish()

    def _abort(self, exc: BaseException, lock: SqliteWriteLock, switched_requested: bool) -> Outcome:
        reason = self.abort_reason(exc)
        self.say(f"cutover ABORTED: {reason}")
        lock.release()  # before the resume: held writes go to SQLite and must not wait on this lock
        if switched_requested and self.outcome.from_mode:
            try:
                self.writes.switch(self.outcome.from_mode, 2.0)  # replace the pending switch
            except WritesError:
                pass
        self.outcome.outcome = "aborted"
        self.outcome.reason = reason
        try:
            released = self.resume()
            if released.switched and released.mode == "postgres":
                self.outcome.outcome = "switched"  # cannot happen: the pending mode was replaced
        except WritesError as resume_error:
            self.outcome.reason += f"; then the resume failed too: {resume_error}"
        return self.finish()

    def _drain(self) -> dict:
        from mailmig import sync as forward_sync

        targets = forward_sync.drain(self.conninfo, self.emails_db, self.auth_db, self.runs_dir,
                                     self.sync_settings, timeout=max(0.01, self.remaining()), progress=None)
        return {"applied_up_to": targets}

    def _sequences(self, lock: SqliteWriteLock) -> dict:
        done = {}
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            for sequence, table in (("mail.emails_id_seq", "emails"), ("mail.accounts_id_seq", "accounts")):
                sqlite_largest = lock.largest_id(table)
                done[sequence] = conn.execute(queries.load("switch_sequence_past"), {
                    "sequence": sequence, "table": f"mail.{table}", "value": sqlite_largest}).fetchone()[0]
        return done

    def _validate_changed(self) -> dict:
        point = self.validation["sync_point"]
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            rows = conn.execute(queries.load("switch_keys_since"), {"point": point}).fetchall()
        keys: dict[str, list] = {}
        for table, key in rows:
            keys.setdefault(table, []).append(key)
        report = validate_keys(self.conninfo, self.emails_db, self.auth_db, keys)
        (self.run_record.dir / "validate-keys.json").write_text(json.dumps(report, indent=1, default=str))
        if not report["ok"]:
            first = report["differences"][0] if report["differences"] else {}
            raise Aborted(f"the keys changed since the last full validation differ: "
                          f"{json.dumps(report['difference_counts'])}; first: {first.get('table')} "
                          f"{first.get('key')} {first.get('kind')} (all in {self.run_record.dir / 'validate-keys.json'})")
        return {"keys": report["keys"], "seconds": report["seconds"], "since_sync_batch": point}


def run_cutover(conninfo, emails_db, auth_db, runs_dir, writes, settings: Settings, sync_settings: dict,
                progress=None) -> Outcome:
    started = time.monotonic()
    outcome = Cutover(conninfo, emails_db, auth_db, runs_dir, writes, settings, sync_settings, progress).run()
    if progress:
        progress(f"cutover finished in {time.monotonic() - started:.2f} s")
    return outcome
