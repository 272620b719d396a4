"""`mailmig rehearse`: the whole live migration, end to end, under real traffic.

On generated data (`--scale small|seed`) and a database of its own on the configured
server (the local cluster by default: `<database>_rehearsal`, made fresh), it runs the
operator's procedure with the real commands, each as its own process, while a real SMTP
client sends mail at `--rate` (28/s: 100x the seed's 1,000 an hour) and an API client
reads inboxes:

  service in sqlite mode -> capture install -> reverse capture install -> load ->
  sync --follow -> validate -> cutover -> traffic on PostgreSQL (sync --reverse --follow)
  -> rollback -> validate again -> cutover again -> traffic on PostgreSQL

At the end of every stage, every message answered 250 so far must be in the store that
is active then (SQLite or PostgreSQL), once. The report: each write pause (the service's
measure, and the longest SMTP reply wait inside it), the p99 reply time outside the
pauses, SMTP 4xx/5xx replies, accepted-but-missing messages, duplicates, API errors; as
a table, as JSON (runs/<run id>/rehearsal.json) and as a PNG timeline
(runs/<run id>/timeline.png). Exit 0 only when every target is met.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import psycopg
import yaml
from psycopg import sql

from mailmig import demo_data, runs
from mailmig.rehearse.traffic import ApiReader, SmtpTraffic, generate_inboxes
from mailmig.sqlrunner import apply_sql
from mailmig import console

SCALES = {"small": (5000, 4000), "seed": (261_000, 250_000)}
# environment variables a child must not inherit: the rehearsal's own YAML says it all
CHILD_ENV_DROP = ("POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_DB", "POSTGRES_DSN", "DB_MODE", "EMAILS_DB", "AUTH_DB",
                  "MAILMIG_RUNS_DIR", "MAILMIG_CONFIG", "MAILMIG_STATE_FILE", "MAILMIG_FAULTS", "MAILMIG_LOCAL_PORT")
MAILMIG = [sys.executable, "-m", "mailmig.cli"]


class RehearsalError(RuntimeError):
    """A step of the rehearsal failed; the message names it and its log."""


def free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Options:
    scale: str = "small"
    rate: float = 28.0
    traffic_seconds: float = 20.0  # traffic on PostgreSQL after each cut-over
    inboxes: int = 20
    api_interval: float = 0.2
    loader: str = "pgloader"
    keep: bool = False  # keep the rehearsal database and files
    echo: bool = True  # print the commands' own output, indented


@dataclass
class Stage:
    name: str
    start: float
    end: float = 0.0
    mode_after: str | None = None
    detail: dict = field(default_factory=dict)
    accepted: int = 0  # messages answered 250 by the stage's end
    missing: list = field(default_factory=list)  # of those, not in the active store
    duplicates: int = 0


class Rehearsal:
    def __init__(self, cfg, options: Options, say=print):
        self.cfg = cfg
        self.options = options
        self.say = say
        self.run = runs.new_run(cfg.runs_dir, "rehearsal")
        self.dir = self.run.dir
        self.t0 = time.monotonic()
        self.stages: list[Stage] = []
        self.pauses: list[dict] = []
        self.children: dict[str, subprocess.Popen] = {}
        self.dbname = f"{cfg.raw['database']['name']}_rehearsal"
        self.traffic: SmtpTraffic | None = None
        self.inboxes: list[str] = []
        self.reader: ApiReader | None = None
        self.smtp_port, self.http_port = free_port(), free_port()
        self.echo = options.echo

    def clock(self) -> float:
        return time.monotonic() - self.t0

    # -- set-up --------------------------------------------------------------------------
    def prepare(self) -> None:
        emails, accounts = SCALES[self.options.scale]
        data = self.dir / "data"
        self.say(f"rehearsal {self.run.id}: {self.dir}")
        self.say(f"generating {emails:,} emails and {accounts:,} accounts (SCALE={self.options.scale}) ...")
        started = time.monotonic()
        last = [time.monotonic()]

        def progress(what: str, done: int, total: int) -> None:
            if time.monotonic() - last[0] >= 5:
                last[0] = time.monotonic()
                self.say(f"   {what}: {done:,} of {total:,}")

        demo_data.generate(data, emails=emails, accounts=accounts, seed=42,
                           end=datetime.now(timezone.utc).date(), progress=progress)
        self.say(f"   done in {time.monotonic() - started:.1f} s")
        if self.cfg.is_local:
            cluster = self.cfg.cluster()
            cluster.init()
            cluster.start()
        with psycopg.connect(self.cfg.conninfo("postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.dbname)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.dbname)))
        self.conninfo = self.cfg.conninfo(self.dbname)
        apply_sql(self.conninfo)
        self.say(f"database {self.dbname}: created, schema applied")
        config = {
            "database": {"dsn": self.cfg.display_url(self.dbname)},
            "sources": {"emails_db": str(data / "emails.db"), "auth_db": str(data / "auth.db")},
            "paths": {"runs_dir": str(self.dir / "runs")},
            "app": {"db_mode": "sqlite"},
            "service": {"smtp_port": self.smtp_port, "http_port": self.http_port,
                        "state_file": str(self.dir / "state" / "service.json")},
            "load": {"loader": self.options.loader},
        }
        self.config_file = self.dir / "mailmig.yaml"
        self.config_file.write_text(yaml.safe_dump(config, sort_keys=False))
        self.env = {k: v for k, v in os.environ.items() if k not in CHILD_ENV_DROP}
        self.env.update({"MAILMIG_CONFIG": str(self.config_file), "PYTHONUNBUFFERED": "1"})
        self.emails_db, self.auth_db = data / "emails.db", data / "auth.db"

    # -- children ---------------------------------------------------------------------------
    def command(self, name: str, *args: str, timeout: float = 3600, check: bool = True) -> subprocess.CompletedProcess:
        """Run `mailmig <args>` to completion; its output goes to logs/<name>.log and, indented,
        to the rehearsal's own output (what the operator would see)."""
        log_path = self.dir / "logs" / f"{name}.log"
        log_path.parent.mkdir(exist_ok=True)
        proc = subprocess.Popen(MAILMIG + list(args), cwd=self.dir, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, bufsize=1)
        watchdog = threading.Timer(timeout, proc.kill)
        watchdog.start()
        try:
            with open(log_path, "w") as log:
                for line in proc.stdout:
                    log.write(line)
                    if self.echo:
                        self.say("   | " + line.rstrip("\n"))
            returncode = proc.wait()
        finally:
            watchdog.cancel()
        if check and returncode != 0:
            tail = log_path.read_text().strip().splitlines()[-5:]
            raise RehearsalError(f"`mailmig {' '.join(args)}` exited {returncode} (log {log_path}):\n   "
                                 + "\n   ".join(tail))
        return subprocess.CompletedProcess(proc.args, returncode)

    def spawn(self, name: str, *args: str) -> subprocess.Popen:
        log_path = self.dir / "logs" / f"{name}.log"
        log_path.parent.mkdir(exist_ok=True)
        log = open(log_path, "w")
        proc = subprocess.Popen(MAILMIG + list(args), cwd=self.dir, env=self.env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.children[name] = proc
        return proc

    def stop_child(self, name: str, timeout: float = 30) -> int | None:
        proc = self.children.pop(name, None)
        if proc is None or proc.poll() is not None:
            return proc.returncode if proc else None
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait(10)

    def log_tail(self, name: str, lines: int = 5) -> str:
        path = self.dir / "logs" / f"{name}.log"
        return "\n   ".join(path.read_text().strip().splitlines()[-lines:]) if path.exists() else ""

    def control(self, path: str, body: dict | None = None) -> dict:
        import urllib.request

        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{self.http_port}{path}", data=data,
                                         method="GET" if body is None else "POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def start_service(self) -> None:
        proc = self.spawn("serve", "serve")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RehearsalError(f"mailmig serve exited {proc.returncode}:\n   {self.log_tail('serve')}")
            try:
                self.control("/control/status")
                return
            except OSError:
                time.sleep(0.1)
        raise RehearsalError(f"mailmig serve did not answer within 60 s:\n   {self.log_tail('serve')}")

    # -- stages -------------------------------------------------------------------------------
    def stage(self, name: str):
        rehearsal = self

        class _Stage:
            def __enter__(self):
                self.record = Stage(name, rehearsal.clock())
                rehearsal.stages.append(self.record)
                rehearsal.say(f"[{self.record.start:7.1f} s] {name} ...")
                return self.record

            def __exit__(self, kind, exc, tb):
                record = self.record
                if exc is None:
                    rehearsal.check_store(record)
                record.end = rehearsal.clock()
                status = "" if exc is None else f"  FAILED: {exc}"
                rehearsal.say(f"[{record.end:7.1f} s] {name}: {record.end - record.start:.1f} s; "
                              f"{record.accepted:,} accepted so far, {len(record.missing)} missing from "
                              f"{record.mode_after}, {record.duplicates} duplicated{status}")
                return False

        return _Stage()

    def wait_sync_lag(self, bound: float, timeout: float = 600) -> float:
        deadline = time.monotonic() + timeout
        lag = None
        while time.monotonic() < deadline:
            proc = self.children.get("sync")
            if proc is not None and proc.poll() is not None:
                raise RehearsalError(f"sync --follow exited {proc.returncode}:\n   {self.log_tail('sync')}")
            with psycopg.connect(self.conninfo, autocommit=True) as conn:
                rows = conn.execute("SELECT lag_seconds, heartbeat_age_seconds, following "
                                    "FROM migration.sync_status(clock_timestamp())").fetchall()
            if len(rows) == 2 and all(r[2] and r[0] is not None and r[0] < bound and r[1] < 2 for r in rows):
                return max(r[0] for r in rows)
            lag = rows
            time.sleep(0.5)
        raise RehearsalError(f"the sync did not catch up within {timeout:.0f} s (status {lag})")

    def validate(self, name: str) -> str:
        """A full validation of the live files under traffic, judged as the cut-over judges
        it: rows the sync applied after its sync point are checked again in the pause."""
        from mailmig.switch.cutover import judge_validation, last_validation

        self.command(name, "validate", "--source", "live", check=False)
        report = last_validation(self.dir / "runs")
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            ok, detail = judge_validation(conn, report or {})
        self.say(f"   validation: {detail}")
        if not ok:
            raise RehearsalError(f"validation: {detail}")
        return detail

    def switch(self, kind: str) -> dict:
        done = self.command(kind, kind, check=False)
        latest = self.dir / "runs" / f"latest-{kind}" / f"{kind}.json"
        report = json.loads(latest.read_text()) if latest.exists() else {}
        if done.returncode != 0 or report.get("outcome") != "switched":
            raise RehearsalError(f"`mailmig {kind}` exited {done.returncode} ({report.get('outcome')}: "
                                 f"{report.get('reason')}); log {self.dir / 'logs' / (kind + '.log')}")
        released = report["released"]["detail"]
        started_at = datetime.fromisoformat(released["started_at"])
        # the pause on this clock: from its start to its release
        pause_start = self.clock() - (datetime.now(timezone.utc) - started_at).total_seconds()
        pause = {"name": kind if not any(p["name"] == kind for p in self.pauses) else f"{kind} 2",
                 "start": pause_start, "end": pause_start + report["paused_seconds"],
                 "write_pause_s": report["write_pause_seconds"], "paused_s": report["paused_seconds"],
                 "held_writes": released.get("held_writes"), "steps": report["steps"], "run_id": report["run_id"]}
        self.pauses.append(pause)
        self.say(f"   {kind}: write pause {pause['write_pause_s']:.3f} s ({pause['held_writes']} writes held), "
                 f"paused {pause['paused_s']:.3f} s")
        return pause

    def check_store(self, stage: Stage) -> None:
        """Every message answered 250 so far is in the active store, once."""
        mode = self.control("/control/status")["mode"]
        stage.mode_after = mode
        accepted = [s for s in self.traffic.snapshot() if s.code == 250] if self.traffic else []
        stage.accepted = len(accepted)
        ids = [s.message_id for s in accepted]
        found: dict[str, int] = {}
        if mode == "postgres":
            with psycopg.connect(self.conninfo, autocommit=True) as conn:
                for start in range(0, len(ids), 5000):
                    # to_address is indexed (message_id only through the guard table): the
                    # rehearsal's inboxes hold the rehearsal's mail alone
                    for mid, n in conn.execute("SELECT message_id, count(*) FROM mail.emails "
                                               "WHERE to_address = ANY(%s) AND message_id = ANY(%s) "
                                               "GROUP BY message_id", (self.inboxes, ids[start:start + 5000])):
                        found[mid] = n
                dup = conn.execute("SELECT count(*) - count(DISTINCT subject) FROM mail.emails "
                                   "WHERE to_address = ANY(%s) AND from_address = 'sender@rehearsal.test'",
                                   (self.inboxes,)).fetchone()[0]
        else:
            conn = sqlite3.connect(f"file:{self.emails_db}?mode=ro", uri=True)
            try:
                for start in range(0, len(ids), 500):
                    chunk = ids[start:start + 500]
                    marks = ",".join("?" * len(chunk))
                    for mid, n in conn.execute(f"SELECT message_id, count(*) FROM emails WHERE message_id IN "
                                               f"({marks}) GROUP BY message_id", chunk):
                        found[mid] = n
                marks = ",".join("?" * len(self.inboxes))
                dup = conn.execute(f"SELECT count(*) - count(DISTINCT subject) FROM emails WHERE to_address IN "
                                   f"({marks}) AND from_address = 'sender@rehearsal.test'",
                                   self.inboxes).fetchone()[0]
            finally:
                conn.close()
        stage.missing = [mid for mid in ids if mid not in found]
        stage.duplicates = int(dup) + sum(n - 1 for n in found.values() if n > 1)

    # -- the procedure ------------------------------------------------------------------------
    def execute(self) -> dict:
        o = self.options
        self.prepare()
        self.t0 = time.monotonic()
        with self.stage("on sqlite, traffic starts"):
            self.start_service()
            base = f"http://127.0.0.1:{self.http_port}"
            inboxes = self.inboxes = generate_inboxes(base, o.inboxes)
            self.traffic = SmtpTraffic("127.0.0.1", self.smtp_port, inboxes, o.rate, self.clock,
                                       run_tag=self.run.id)
            self.reader = ApiReader(base, inboxes, self.clock, o.api_interval)
            self.traffic.start()
            self.reader.start()
            time.sleep(3)
        with self.stage("capture install"):
            self.command("capture-install", "capture", "install")
        with self.stage("load"):
            self.command("load", "load")
        with self.stage("sync catches up") as st:
            self.spawn("sync", "sync", "--follow")
            st.detail["lag_s"] = self.wait_sync_lag(1.0)
        with self.stage("validate") as st:
            st.detail["validation"] = self.validate("validate")
        with self.stage("reverse capture install"):
            # after the load: the load's rows need no way back and are not logged
            self.command("reverse-capture-install", "reverse-capture", "install")
        with self.stage("cutover"):
            self.wait_sync_lag(1.0)
            self.switch("cutover")
        with self.stage("on PostgreSQL"):
            self.spawn("sync-reverse", "sync", "--reverse", "--follow")
            time.sleep(o.traffic_seconds)
        with self.stage("rollback"):
            self.switch("rollback")
            self.stop_child("sync-reverse")
        with self.stage("validate again") as st:
            self.wait_sync_lag(1.0)
            st.detail["validation"] = self.validate("validate-2")
        with self.stage("cutover again"):
            self.wait_sync_lag(1.0)
            self.switch("cutover")
        with self.stage("on PostgreSQL again"):
            time.sleep(max(5.0, o.traffic_seconds / 2))
            self.traffic.stop()
            self.reader.stop()
        return self.report()

    def close(self) -> None:
        if self.traffic:
            self.traffic.stop(wait_s=10)
        if self.reader:
            self.reader.stop()
        for name in list(self.children):
            self.stop_child(name)
        if not self.options.keep and getattr(self, "conninfo", None):
            try:
                with psycopg.connect(self.cfg.conninfo("postgres"), autocommit=True) as conn:
                    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(self.dbname)))
            except psycopg.Error as exc:
                self.say(f"note: could not drop {self.dbname}: {exc}")
            # the generated files and the load's snapshot copies: gigabytes at seed volume
            shutil.rmtree(self.dir / "data", ignore_errors=True)
            for heavy in ("snapshot", "work"):
                for path in (self.dir / "runs").glob(f"*/{heavy}"):
                    shutil.rmtree(path, ignore_errors=True)

    # -- the report ----------------------------------------------------------------------------
    def report(self) -> dict:
        sent = self.traffic.snapshot()
        reads = self.reader.reads
        answered = [s for s in sent if s.code is not None]
        codes: dict[str, int] = {}
        for s in answered:
            codes[str(s.code)] = codes.get(str(s.code), 0) + 1
        errors_4xx = sum(1 for s in answered if 400 <= s.code < 500)
        errors_5xx = sum(1 for s in answered if 500 <= s.code < 600)
        no_reply = sum(1 for s in sent if s.code is None)

        def in_pause(s) -> dict | None:
            for p in self.pauses:
                if s.started is not None and s.replied is not None and s.started <= p["end"] \
                        and s.replied >= p["start"]:
                    return p
            return None

        outside = sorted(s.reply_seconds for s in answered if s.reply_seconds is not None and in_pause(s) is None)
        p99 = outside[min(len(outside) - 1, int(0.99 * len(outside)))] if outside else None
        p50 = outside[len(outside) // 2] if outside else None
        for p in self.pauses:
            held = [s.reply_seconds for s in answered if in_pause(s) is p]
            p["longest_reply_wait_s"] = round(max(held), 3) if held else 0.0
            p["messages_in_pause"] = len(held)
            p["peak_ms"] = max(held) * 1000 if held else 1
        missing = sum(len(st.missing) for st in self.stages)
        duplicates = max((st.duplicates for st in self.stages), default=0)
        api_errors = sum(1 for r in reads if r.error)
        targets = {
            "pause under 2 s each": all(p["write_pause_s"] < 2.0 for p in self.pauses),
            "0 SMTP 4xx/5xx": errors_4xx + errors_5xx == 0,
            "0 accepted-but-missing": missing == 0,
            "0 duplicated": duplicates == 0,
            "0 API errors": api_errors == 0,
            "0 messages without a reply": no_reply == 0,
        }
        report = {
            "run_id": self.run.id, "scale": self.options.scale, "rate_per_s": self.options.rate,
            "seconds": round(self.clock(), 1),
            "messages": {"sent": len(sent), "answered": len(answered), "replies": codes, "4xx": errors_4xx,
                         "5xx": errors_5xx, "no_reply": no_reply,
                         "achieved_rate_per_s": round(len(sent) / max(sent[-1].due - sent[0].due, 1e-9), 2)
                         if len(sent) > 1 else None},
            "reply_seconds_outside_pauses": {"p50": p50, "p99": p99, "max": outside[-1] if outside else None,
                                              "count": len(outside)},
            "pauses": [{k: v for k, v in p.items() if k != "peak_ms"} for p in self.pauses],
            "stages": [{"name": st.name, "start_s": round(st.start, 2), "end_s": round(st.end, 2),
                        "seconds": round(st.end - st.start, 2), "active_store": st.mode_after,
                        "accepted_so_far": st.accepted, "missing": len(st.missing),
                        "missing_first": st.missing[:20], "duplicates": st.duplicates, **st.detail}
                       for st in self.stages],
            "accepted_missing_total": missing, "duplicates": duplicates,
            "api": {"reads": len(reads), "errors": api_errors,
                    "p99_ms": round(sorted(r.seconds for r in reads)[int(0.99 * (len(reads) - 1))] * 1000, 1)
                    if reads else None},
            "targets": targets, "ok": all(targets.values()),
        }
        from mailmig.rehearse import timeline  # matplotlib: the bench extra (make setup installs it)

        png = timeline.draw(
            self.dir / "timeline.png",
            f"mailmig rehearse {self.run.id}: SCALE={self.options.scale}, {self.options.rate:g} emails/s, "
            f"{len(sent):,} messages, {errors_4xx + errors_5xx} SMTP errors, {missing} missing, "
            f"{duplicates} duplicated",
            [{"name": st.name, "start": st.start, "end": st.end} for st in self.stages], self.pauses, sent, reads,
            p99 * 1000 if p99 else None)
        report["timeline_png"] = str(png)
        report["samples"] = [asdict(s) for s in sent]
        path = self.run.write_json("rehearsal.json", report)
        report["report_path"] = str(path)
        runs.mark_latest(self.cfg.runs_dir, self.run)
        return report


def print_report(report: dict, say=print) -> None:
    m = report["messages"]
    say("")
    say(console.table(["pause", "write pause s", "paused s", "writes held", "longest SMTP reply wait s", "msgs in pause"],
               [[p["name"], p["write_pause_s"], p["paused_s"], p["held_writes"], p["longest_reply_wait_s"],
                 p["messages_in_pause"]] for p in report["pauses"]]))
    say("")
    say(console.table(["stage", "seconds", "active store", "accepted so far", "missing", "duplicated"],
               [[s["name"], s["seconds"], s["active_store"], s["accepted_so_far"], s["missing"], s["duplicates"]]
                for s in report["stages"]]))
    r = report["reply_seconds_outside_pauses"]
    say("")
    say(console.table(["figure", "value", "target"], [
        ["messages sent (offered rate / achieved)", f"{m['sent']:,} ({report['rate_per_s']:g}/s / "
                                                    f"{m['achieved_rate_per_s']}/s)", ""],
        ["SMTP replies", ", ".join(f"{k}: {v:,}" for k, v in sorted(m["replies"].items())), ""],
        ["SMTP 4xx / 5xx", f"{m['4xx']} / {m['5xx']}", "0"],
        ["messages without a reply", m["no_reply"], "0"],
        ["reply time outside pauses p50 / p99 / max ms",
         " / ".join("-" if v is None else f"{v * 1000:.1f}" for v in (r["p50"], r["p99"], r["max"])), ""],
        ["accepted (250) but missing at a stage's end", report["accepted_missing_total"], "0"],
        ["duplicated", report["duplicates"], "0"],
        ["API reads / errors / p99 ms", f"{report['api']['reads']:,} / {report['api']['errors']} / "
                                        f"{report['api']['p99_ms']}", "0 errors"],
    ]))
    say("")
    for name, ok in report["targets"].items():
        say(f"  {'ok  ' if ok else 'MISS'} {name}")
    say(f"\nrehearsal {'PASSED' if report['ok'] else 'FAILED'} in {report['seconds']} s; "
        f"report: {report['report_path']}; timeline: {report['timeline_png']}")


def cmd_rehearse(args, cfg) -> int:
    options = Options(scale=args.scale, rate=args.rate, traffic_seconds=args.traffic_seconds, keep=args.keep,
                      loader=args.loader or cfg.raw["load"]["loader"])
    rehearsal = Rehearsal(cfg, options, say=lambda message: print(message, flush=True))
    try:
        report = rehearsal.execute()
    except RehearsalError as exc:
        print(f"rehearsal FAILED: {exc}", flush=True)
        return 1
    finally:
        rehearsal.close()
    print_report(report)
    return 0 if report["ok"] else 1


def add_commands(subparsers) -> None:
    parser = subparsers.add_parser(
        "rehearse", help="the whole live migration end to end under SMTP traffic, measured (make rehearse)",
        description=__doc__.split("\n\n", 1)[1], formatter_class=__import__("argparse").RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=tuple(SCALES), default="small",
                        help="generated data: small (5,000 emails, default) or seed (261,000)")
    parser.add_argument("--rate", type=float, default=28.0, help="emails per second over SMTP (default 28)")
    parser.add_argument("--traffic-seconds", type=float, default=20.0,
                        help="seconds of traffic on PostgreSQL after the cut-over (default 20)")
    parser.add_argument("--loader", choices=("pgloader", "copy"), help="default: load.loader")
    parser.add_argument("--keep", action="store_true", help="keep the rehearsal database and data files")
    parser.set_defaults(func=cmd_rehearse)
