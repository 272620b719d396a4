"""What the cut-over and rollback tests share: a loaded database (template), the legacy
files copied beside it, the real service on them, a real SMTP sender, and the
`mailmig cutover|rollback` commands run as their own processes."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import yaml

from tests.func.service_process import ServiceProcess, message

MAILMIG = [sys.executable, "-m", "mailmig.cli"]


def copy_sqlite(src: Path, dst: Path) -> None:
    a, b = sqlite3.connect(src), sqlite3.connect(dst)
    try:
        a.backup(b)
    finally:
        a.close()
        b.close()


class Sender:
    """A real SMTP client sending one message per connection at about `rate` per second
    from a thread, recording every reply; retries a dropped connection (as an MTA)."""

    def __init__(self, service: ServiceProcess, tag: str, rate: float = 20.0):
        self.service, self.tag, self.rate = service, tag, rate
        self.replies: dict[str, int | None] = {}
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.n = 0

    def _run(self) -> None:
        while not self.stop_event.is_set():
            mid = f"<{self.tag}-{self.n}@switch.test>"
            self.n += 1
            code = None
            for _ in range(20):
                try:
                    code = self.service.send("switch@tempmail.test", message(f"{self.tag} {self.n}", message_id=mid))[0]
                    break
                except OSError:
                    time.sleep(0.25)  # the service is down: try again, as an MTA does
            self.replies[mid] = code
            self.stop_event.wait(1 / self.rate)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_event.set()
        self.thread.join(60)

    @property
    def accepted(self) -> set[str]:
        return {m for m, c in self.replies.items() if c == 250}


class SwitchEnv:
    def __init__(self, workdir: Path, dsn: str, mode: str, cutover: dict | None = None):
        self.workdir = workdir
        self.dsn = dsn
        self.service = ServiceProcess(workdir, mode, dsn=dsn)
        if cutover:
            config = yaml.safe_load(self.service.config_file.read_text())
            config["cutover"] = cutover
            self.service.config_file.write_text(yaml.safe_dump(config))
        self.emails_db = workdir / "emails.db"
        self.auth_db = workdir / "auth.db"

    def mailmig(self, *args: str, faults: str | None = None, timeout: float = 120, background: bool = False):
        env = dict(self.service.env)
        if faults:
            env["MAILMIG_FAULTS"] = faults
        cmd = MAILMIG + list(args)
        if background:
            return subprocess.Popen(cmd, cwd=self.workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True)
        return subprocess.run(cmd, cwd=self.workdir, env=env, capture_output=True, text=True, timeout=timeout)

    def report(self, kind: str) -> dict:
        return json.loads((self.workdir / "runs" / f"latest-{kind}" / f"{kind}.json").read_text())

    def sql(self, query: str, params=None):
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else None

    def in_sqlite(self, message_ids) -> set[str]:
        conn = sqlite3.connect(f"file:{self.emails_db}?mode=ro", uri=True)
        try:
            ids = list(message_ids)
            found = set()
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                found |= {r[0] for r in conn.execute(
                    f"SELECT message_id FROM emails WHERE message_id IN ({','.join('?' * len(chunk))})", chunk)}
            return found
        finally:
            conn.close()

    def in_postgres(self, message_ids) -> set[str]:
        return {r[0] for r in self.sql("SELECT message_id FROM mail.emails WHERE message_id = ANY(%s)",
                                       (list(message_ids),))}

    def fts_ok(self) -> None:
        conn = sqlite3.connect(self.emails_db)
        try:
            conn.execute("INSERT INTO emails_fts (emails_fts) VALUES ('integrity-check')")
        finally:
            conn.close()


def prepare_files(dataset: Path, workdir: Path) -> None:
    for name in ("emails.db", "auth.db"):
        copy_sqlite(dataset / name, workdir / name)


def wait_for(path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear within {timeout} s")
        time.sleep(0.02)

