"""The rehearsal's clients: real SMTP (smtplib, one thread per connection) at a fixed rate,
and an HTTP client reading inboxes, each recording every call it made.

The SMTP side offers a steady load: a scheduler releases message number i at
t0 + i / rate, and enough worker threads (each with its own persistent connection, as a
relaying MTA keeps one) take them, so that replies held during a write pause do not
lower the offered rate until more than `workers` are held at once. Every message
records when it was due, when its transaction began, when its DATA reply came, and
the reply code; the reply time is the DATA reply's arrival minus the transaction's
start (the wait a sender sees), the queueing before it is kept apart.
"""

from __future__ import annotations

import json
import queue
import random
import smtplib
import socket
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass


@dataclass
class Sent:
    seq: int
    message_id: str
    to: str
    due: float  # seconds since the rehearsal began (its clock, time.monotonic based)
    started: float | None = None
    replied: float | None = None
    code: int | None = None
    reply: str | None = None
    error: str | None = None
    attempts: int = 0

    @property
    def reply_seconds(self) -> float | None:
        if self.started is None or self.replied is None:
            return None
        return self.replied - self.started


@dataclass
class Read:
    at: float
    seconds: float
    status: int | None
    error: str | None = None


class SmtpTraffic:
    def __init__(self, host: str, port: int, inboxes: list[str], rate: float, clock, workers: int | None = None,
                 run_tag: str = "rehearsal", timeout: float = 120.0):
        if rate <= 0:
            raise ValueError("the rate must be above 0 messages per second")
        self.host, self.port = host, port
        self.inboxes = inboxes
        self.rate = rate
        self.clock = clock  # seconds since the rehearsal began
        self.workers = workers or max(16, int(rate * 3))
        self.run_tag = run_tag
        self.timeout = timeout
        self.sent: list[Sent] = []
        self._lock = threading.Lock()
        self._queue: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.random = random.Random(7)

    def start(self) -> None:
        self._threads = [threading.Thread(target=self._schedule, name="smtp-schedule", daemon=True)]
        self._threads += [threading.Thread(target=self._work, name=f"smtp-{i}", daemon=True)
                          for i in range(self.workers)]
        for thread in self._threads:
            thread.start()

    def stop(self, wait_s: float = 60.0) -> None:
        """Stop scheduling; wait (up to wait_s) for every message already due to be answered."""
        self._stop.set()
        for _ in range(self.workers):
            self._queue.put(None)
        deadline = time.monotonic() + wait_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _schedule(self) -> None:
        begun = self.clock()
        seq = 0
        while not self._stop.is_set():
            due = begun + seq / self.rate
            delay = due - self.clock()
            if delay > 0 and self._stop.wait(delay):
                break
            to = self.inboxes[seq % len(self.inboxes)]
            item = Sent(seq, f"<{self.run_tag}.{seq}@rehearsal.mailmig>", to, due)
            with self._lock:
                self.sent.append(item)
            self._queue.put(item)
            seq += 1

    def _message(self, item: Sent) -> bytes:
        body = " ".join(self.random.choice(("alpha", "bravo", "delta", "echo", "lima", "oscar", "tango"))
                        for _ in range(60))
        return (f"From: Rehearsal <sender@rehearsal.test>\r\nTo: {item.to}\r\n"
                f"Subject: rehearsal #{item.seq} {self.run_tag}\r\nMessage-ID: {item.message_id}\r\n"
                f"X-Rehearsal-Seq: {item.seq}\r\n\r\n{body}\r\n").encode()

    def _work(self) -> None:
        client: smtplib.SMTP | None = None
        while True:
            item = self._queue.get()
            if item is None:
                break
            while True:
                item.attempts += 1
                try:
                    if client is None:
                        client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
                        client.ehlo("rehearsal.test")
                    item.started = self.clock()
                    code, reply = client.mail("sender@rehearsal.test")
                    if code == 250:
                        code, reply = client.rcpt(item.to)
                    if code == 250:
                        code, reply = client.data(self._message(item))
                    else:
                        client.rset()
                    item.replied = self.clock()
                    item.code, item.reply = code, reply.decode(errors="replace")[:200]
                    item.error = None
                    break
                except (smtplib.SMTPException, OSError, socket.timeout) as exc:
                    item.error = f"{type(exc).__name__}: {exc}"[:200]
                    if client is not None:
                        try:
                            client.close()
                        except OSError:
                            pass
                    client = None
                    if item.attempts >= 5 or self._stop.is_set() and item.attempts >= 2:
                        item.replied = self.clock()
                        break
                    time.sleep(0.5)  # as an MTA retries a dropped connection (never after a 4xx: 30 min)
        if client is not None:
            try:
                client.quit()
            except (smtplib.SMTPException, OSError):
                pass

    def snapshot(self) -> list[Sent]:
        with self._lock:
            return list(self.sent)


class ApiReader:
    """Reads inboxes (GET /api/json/<address>) in a loop, recording each call."""

    def __init__(self, base_url: str, inboxes: list[str], clock, interval: float = 0.2, timeout: float = 30.0):
        self.base_url = base_url.rstrip("/")
        self.inboxes = inboxes
        self.clock = clock
        self.interval = interval
        self.timeout = timeout
        self.reads: list[Read] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="api-reader", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(self.timeout + 5)

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            address = self.inboxes[i % len(self.inboxes)]
            i += 1
            started = self.clock()
            status, error = None, None
            try:
                with urllib.request.urlopen(f"{self.base_url}/api/json/{address}?limit=20",
                                            timeout=self.timeout) as response:
                    status = response.status
                    payload = json.loads(response.read())
                    if "emails" not in payload:
                        error = "no emails in the answer"
            except urllib.error.HTTPError as exc:
                status, error = exc.code, f"HTTP {exc.code}"
            except (OSError, ValueError) as exc:
                error = f"{type(exc).__name__}: {exc}"[:200]
            self.reads.append(Read(started, self.clock() - started, status, error))
            self._stop.wait(self.interval)


def generate_inboxes(base_url: str, count: int, timeout: float = 30.0) -> list[str]:
    """New inboxes through the seed's call (POST /api/email/generate)."""
    addresses = []
    for _ in range(count):
        request = urllib.request.Request(f"{base_url.rstrip('/')}/api/email/generate", data=b"{}", method="POST")
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=timeout) as response:
            addresses.append(json.loads(response.read())["email"])
    return addresses
