"""`mailmig serve` as a real process for the tests, with real clients (smtplib, swaks,
urllib). Free ports, files and configuration of its own in a temporary directory."""

from __future__ import annotations

import json
import os
import signal
import smtplib
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

from tests.conftest import free_port

PROJECT = Path(__file__).resolve().parents[2]
MAILMIG = [sys.executable, "-m", "mailmig.cli"]


class ServiceProcess:
    def __init__(self, workdir: Path, mode: str, dsn: str | None = None, service: dict | None = None,
                 app: dict | None = None, env: dict | None = None):
        self.workdir = Path(workdir)
        self.mode = mode
        self.dsn = dsn
        self.smtp_port = free_port()
        self.http_port = free_port()
        config = {"service": {"smtp_port": self.smtp_port, "http_port": self.http_port,
                              "state_file": str(self.workdir / "state" / "service.json"), **(service or {})},
                  "app": {"db_mode": mode, "shadow_read_rate": 1.0, **(app or {})},
                  "sources": {"emails_db": str(self.workdir / "emails.db"), "auth_db": str(self.workdir / "auth.db")}}
        if dsn:
            config["database"] = {"dsn": dsn}
        self.config_file = self.workdir / "mailmig.yaml"
        self.config_file.write_text(yaml.safe_dump(config))
        self.env = {k: v for k, v in os.environ.items() if k not in ("DB_MODE", "POSTGRES_DSN", "POSTGRES_HOST")}
        self.env.update({"MAILMIG_CONFIG": str(self.config_file), "PYTHONUNBUFFERED": "1", **(env or {})})
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def log_text(self) -> str:
        return "".join(p.read_text() for p in sorted(self.workdir.glob("serve-*.log")))

    def start(self, timeout: float = 30.0, expect_healthy: bool = True) -> "ServiceProcess":
        self.starts += 1
        log = open(self.workdir / f"serve-{self.starts}.log", "w")
        self.proc = subprocess.Popen(MAILMIG + ["serve"], cwd=self.workdir, env=self.env, stdout=log,
                                     stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mailmig serve exited {self.proc.returncode}:\n{self.log_text}")
            try:
                status, _ = self.get("/health")
                if status == 200 or not expect_healthy:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"mailmig serve did not become healthy:\n{self.log_text}")

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait: the exit status."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    # -- HTTP ----------------------------------------------------------------------------
    def call(self, method: str, path: str, body: dict | None = None, token: str | None = None,
             timeout: float = 30.0) -> tuple[int, dict]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def get(self, path: str, **kw) -> tuple[int, dict]:
        return self.call("GET", path, **kw)

    def post(self, path: str, body: dict | None = None, **kw) -> tuple[int, dict]:
        return self.call("POST", path, body if body is not None else {}, **kw)

    def generate(self) -> dict:
        status, account = self.post("/api/email/generate")
        assert status == 200, account
        return account

    def inbox(self, address: str) -> list[dict]:
        status, payload = self.get(f"/api/json/{address}")
        assert status == 200, payload
        return payload["emails"]

    # -- SMTP --------------------------------------------------------------------------------
    def smtp(self, timeout: float = 60.0) -> smtplib.SMTP:
        return smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=timeout)

    def send(self, to: str | list[str], raw: bytes, sender: str = "sender@example.org") -> tuple[int, bytes]:
        """One message over a fresh connection: the DATA reply (code, text), never raising."""
        rcpts = [to] if isinstance(to, str) else to
        with self.smtp() as client:
            client.ehlo()
            code, reply = client.mail(sender)
            if code != 250:
                return code, reply
            for rcpt in rcpts:
                client.rcpt(rcpt)
            return client.data(raw)

    def swaks(self, to: str, subject: str, body: str) -> subprocess.CompletedProcess:
        return subprocess.run(["swaks", "--server", f"127.0.0.1:{self.smtp_port}", "--to", to,
                               "--from", "swaks@example.org", "--header", f"Subject: {subject}", "--body", body,
                               "--timeout", "60"], capture_output=True, text=True, timeout=120)


def message(subject: str = "hello", body: str = "the body", message_id: str | None = "auto",
            to: str = "someone@tempmail.test", extra: str = "") -> bytes:
    lines = [f"From: Sender <sender@example.org>", f"To: {to}", f"Subject: {subject}"]
    if message_id == "auto":
        message_id = f"<{time.monotonic_ns()}.{os.getpid()}@test.example>"
    if message_id:
        lines.append(f"Message-ID: {message_id}")
    text = "\r\n".join(lines) + ("\r\n" + extra if extra else "") + "\r\n\r\n" + body + "\r\n"
    return text.encode("utf-8")
