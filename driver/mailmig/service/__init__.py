"""`mailmig serve`: the reference mail service, SMTP and the JSON API over the store.

One process: an asyncio loop runs the SMTP server (aiosmtpd); a threaded HTTP server
runs the API and the control calls; store calls run on a thread pool
(service.workers). Every write passes the write gate (gate.py), which the control calls
(control.py) pause and resume. SIGTERM or SIGINT: stop accepting connections, release a
pause on the old mode, wait for the writes in flight (service.drain_timeout), refuse
later ones, close the pool, exit 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from mailmig.service.control import Controller, initial_mode
from mailmig.service.gate import WriteGate
from mailmig.service.http import ApiServer
from mailmig.service.smtp import MailHandler, MailSMTP
from mailmig.store import open_store

log = logging.getLogger("mailmig.service")


def _setup_logging() -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd's per-command chatter
    logging.getLogger("psycopg.pool").setLevel(logging.WARNING)


class Service:
    def __init__(self, cfg, mode: str | None = None):
        self.cfg = cfg
        self.settings = dict(cfg.raw["service"])
        if self.settings["control_remote"] and not cfg.control_token:
            raise ValueError("service.control_remote needs MAILMIG_CONTROL_TOKEN (environment or .env)")
        if mode is None:
            mode, self.mode_origin = initial_mode(cfg)
        else:
            self.mode_origin = "--mode"
        self.store = open_store(cfg, mode)
        self.gate = WriteGate()
        self.controller = Controller(self.store, self.gate, cfg.state_file, self.settings["pause_limit"])
        self.executor = ThreadPoolExecutor(max_workers=self.settings["workers"], thread_name_prefix="store")
        self.handler = MailHandler(self.store, self.gate, self.executor, hostname=self.settings["hostname"],
                                   max_recipients=self.settings["max_recipients"])
        self.started = time.monotonic()
        self.http: ApiServer | None = None
        self.smtp_server = None

    def extra_status(self) -> dict:
        return {"smtp": f"{self.settings['smtp_host']}:{self.settings['smtp_port']}",
                "http": f"{self.settings['http_host']}:{self.settings['http_port']}",
                "smtp_replies": dict(self.handler.replies), "uptime_seconds": round(time.monotonic() - self.started, 3),
                "start_mode_origin": self.mode_origin}

    def _smtp_protocol(self):
        s = self.settings
        return MailSMTP(self.handler, max_line_bytes=s["max_line_bytes"], data_size_limit=s["max_message_bytes"],
                        enable_SMTPUTF8=True, decode_data=False, hostname=s["hostname"], ident="mailmig ESMTP",
                        timeout=300)

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        s = self.settings
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        self.smtp_server = await loop.create_server(self._smtp_protocol, s["smtp_host"], s["smtp_port"])
        self.http = ApiServer((s["http_host"], s["http_port"]), store=self.store, gate=self.gate,
                              controller=self.controller, settings=s, control_token=self.cfg.control_token,
                              extra_status=self.extra_status)
        http_thread = threading.Thread(target=self.http.serve_forever, name="http", daemon=True)
        http_thread.start()
        print(f"mailmig serve: SMTP on {s['smtp_host']}:{s['smtp_port']}, HTTP on {s['http_host']}:{s['http_port']} "
              f"(control under /control), store mode {self.store.mode} (from {self.mode_origin})", flush=True)
        await stop.wait()
        return await self.shutdown(http_thread)

    async def shutdown(self, http_thread: threading.Thread) -> int:
        loop = asyncio.get_running_loop()
        log.warning("stopping: no new connections, draining writes in flight")
        self.smtp_server.close()
        await loop.run_in_executor(None, self.http.shutdown)
        released = await loop.run_in_executor(None, self.controller.release_for_shutdown)
        if released:
            log.warning("a pause was on at shutdown: its writes resumed on %s", self.store.mode)
        deadline = time.monotonic() + self.settings["drain_timeout"]
        while (self.gate.in_flight > 0 or self.http.requests_in_flight > 0) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        left = self.gate.in_flight
        self.gate.close()
        await asyncio.sleep(0.05)  # the replies of the last writes go out
        for task in asyncio.all_tasks(loop):
            if task is not asyncio.current_task():
                task.cancel()
        await asyncio.sleep(0)
        self.http.server_close()
        await loop.run_in_executor(None, lambda: self.executor.shutdown(wait=True))
        self.store.close()
        print(f"mailmig serve: stopped ({'all writes drained' if left == 0 else f'{left} writes still in flight'}); "
              f"SMTP replies {dict(sorted(self.handler.replies.items()))}", flush=True)
        return 0 if left == 0 else 1


def serve(args, cfg) -> int:
    _setup_logging()
    service = Service(cfg, args.mode)
    return asyncio.run(service.run())


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "serve", help="run the reference mail service: SMTP + the JSON API over the store",
        description="SMTP on service.smtp_host:smtp_port (default 127.0.0.1:2525) and HTTP on "
                    "service.http_host:http_port (default 127.0.0.1:4000: POST /api/email/generate, "
                    "GET /api/json/<address>, /api/search, /health, control calls under /control). "
                    "The store's mode is the state file's (service.state_file, written by a control call's "
                    "switch) if there is one, else app.db_mode / DB_MODE. SIGTERM drains writes and exits 0.")
    p.add_argument("--mode", choices=("sqlite", "dual", "postgres"),
                   help="start in this mode (wins over the state file and DB_MODE)")
    p.set_defaults(func=serve)
