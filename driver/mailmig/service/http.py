"""HTTP: the seed's JSON API, search, health, and the control calls (under /control).

API (JSON in and out):
- POST /api/email/generate            a new inbox: {"email", "token", "expires_at"} (a write)
- GET  /api/json/<address>[?limit=N]  its newest emails: {"address", "count", "emails": [...]}
- GET  /api/email/<id>                one email, with headers and raw_email
- POST /api/email/<id>/read | /star   {"value": true|false} (default true); a write
- DELETE /api/email/<id>              a write
  (the three writes need `Authorization: Bearer <token>` of the inbox's account)
- GET  /api/search?q=...[&address=...][&limit=N]
- GET  /health                        mode, pause, counters, pool; 503 when the store that takes
                                      the writes does not answer ("degraded", 200: dual mode
                                      with PostgreSQL down)
Control (loopback peers only unless service.control_remote; with MAILMIG_CONTROL_TOKEN
set, `Authorization: Bearer <that token>` too):
- GET  /control/status
- POST /control/pause   {"limit_seconds": 5}
- POST /control/mode    {"mode": "postgres", "pause_id": N}
- POST /control/resume  {"pause_id": N}
Writes wait at the gate during a pause (never a 4xx for that); 503 when the store cannot
commit or the service is shutting down.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from mailmig.service.control import ControlError, Controller
from mailmig.service.gate import GateClosed, WriteGate
from mailmig.store import Store, StoreError, StoreUnavailable, utc_now
from mailmig.store.model import ascii_lower, expires_after, iso

log = logging.getLogger("mailmig.service.http")
MAX_BODY = 64 * 1024
MAX_LIMIT = 1000
MAX_ID = 2**63 - 1  # bigint, SQLite's INTEGER


class HttpError(Exception):
    def __init__(self, status: int, message: str, detail: dict | None = None):
        super().__init__(message)
        self.status = status
        self.detail = detail or {}


class ApiServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, *, store: Store, gate: WriteGate, controller: Controller, settings: dict,
                 control_token: str | None, extra_status=None):
        self.store = store
        self.gate = gate
        self.controller = controller
        self.settings = settings
        self.control_token = control_token
        self.extra_status = extra_status or (lambda: {})
        self.requests_in_flight = 0
        self._count_lock = threading.Lock()
        super().__init__(address, Handler)


class Handler(BaseHTTPRequestHandler):
    server: ApiServer
    protocol_version = "HTTP/1.0"  # one request per connection: an error never leaves a body unread
    server_version = "mailmig"

    # -- plumbing -------------------------------------------------------------------------
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        # the request line only: tokens travel in headers, never in paths
        log.info("%s %s", self.address_string(), format % args)

    def _send(self, status: int, payload) -> None:
        body = json.dumps(payload, ensure_ascii=False, indent=1).encode("utf-8") + b"\n"
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _body(self) -> dict:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise HttpError(400, "Content-Length is not an integer") from None
        if length < 0:  # rfile.read(-1) would wait for the client to close
            raise HttpError(400, "Content-Length is negative")
        if length > MAX_BODY:
            raise HttpError(413, f"request body over {MAX_BODY} bytes")
        if not length:
            return {}
        try:
            data = json.loads(self.rfile.read(length))
        except ValueError:
            raise HttpError(400, "the request body is not JSON") from None
        if not isinstance(data, dict):
            raise HttpError(400, "the request body must be a JSON object")
        return data

    def _bearer(self) -> str | None:
        value = self.headers.get("Authorization") or ""
        scheme, _, token = value.partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None

    def _dispatch(self, method: str) -> None:
        with self.server._count_lock:
            self.server.requests_in_flight += 1
        try:
            parts = urlsplit(self.path)
            path = parts.path
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            for name, value in [("path", unquote(path)), *query.items()]:
                if "\x00" in name or "\x00" in value:  # PostgreSQL text cannot hold one: no store has it
                    raise HttpError(400, f"{'the path' if name == 'path' else repr(name)} contains a NUL character")
            if path.startswith("/control/") or path == "/control":
                self._check_control()
                status, payload = self._control(method, path)
            else:
                status, payload = self._api(method, path, query)
            self._send(status, payload)
        except HttpError as exc:
            self._send(exc.status, {"error": str(exc), **exc.detail})
        except ControlError as exc:
            self._send(exc.status, {"error": str(exc), **exc.detail})
        except GateClosed:
            self._send(503, {"error": "the service is shutting down; try again later"})
        except StoreUnavailable as exc:
            self._send(503, {"error": f"the store is unavailable: {exc}"})
        except StoreError as exc:
            self._send(500, {"error": f"the store failed: {exc}"})
        except ValueError as exc:
            self._send(400, {"error": str(exc)})
        finally:
            with self.server._count_lock:
                self.server.requests_in_flight -= 1

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_DELETE(self):
        self._dispatch("DELETE")

    # -- the API ---------------------------------------------------------------------------
    def _limit(self, query: dict, default: int) -> int:
        try:
            limit = int(query.get("limit", default))
        except ValueError:
            raise HttpError(400, "limit must be an integer") from None
        if not 1 <= limit <= MAX_LIMIT:
            raise HttpError(400, f"limit must be between 1 and {MAX_LIMIT}")
        return limit

    def _api(self, method: str, path: str, query: dict):
        store, gate = self.server.store, self.server.gate
        segments = [unquote(s) for s in path.strip("/").split("/")]
        if method == "POST" and segments == ["api", "email", "generate"]:
            self._body()
            settings = self.server.settings
            with gate.write():
                account = store.create_account(domain=settings["mail_domain"],
                                               expires_at=expires_after(settings["account_ttl"], utc_now()))
            return 200, {"email": account.email, "token": account.token, "expires_at": iso(account.expires_at)}
        if method == "GET" and len(segments) == 3 and segments[:2] == ["api", "json"]:
            address = ascii_lower(segments[2])
            emails = store.inbox(address, self._limit(query, self.server.settings["inbox_limit"]))
            return 200, {"address": address, "count": len(emails), "emails": [e.as_json(full=False) for e in emails]}
        if len(segments) >= 3 and segments[:2] == ["api", "email"] and segments[2].isascii() \
                and segments[2].isdigit():
            email_id = int(segments[2])
            if not 0 < email_id <= MAX_ID:  # beyond bigint: no email has it in either store
                raise HttpError(404, f"no email {segments[2][:40]}")
            return self._email(method, email_id, segments[3:])
        if method == "GET" and segments == ["api", "search"]:
            text = query.get("q", "")
            if not text.strip():
                raise HttpError(400, "q (the search text) is required")
            address = ascii_lower(query["address"]) if query.get("address") else None
            hits = store.search(text, address, self._limit(query, 50))
            return 200, {"query": text, "address": address, "count": len(hits), "results": [h.as_json() for h in hits]}
        if method == "GET" and segments == ["health"]:
            return self._health()
        raise HttpError(404, f"no such call: {method} {path}")

    def _email(self, method: str, email_id: int, rest: list[str]):
        store, gate = self.server.store, self.server.gate
        if method == "GET" and not rest:
            email = store.get_email(email_id)
            if email is None:
                raise HttpError(404, f"no email {email_id}")
            return 200, email.as_json(full=True)
        action = {("POST", "read"): "read", ("POST", "star"): "star", ("DELETE", None): "delete"}.get(
            (method, rest[0] if rest else None))
        if action is None or len(rest) > 1:
            raise HttpError(404, f"no such call: {method} /api/email/{email_id}/{'/'.join(rest)}")
        value = self._body().get("value", True) if action != "delete" else None
        if action != "delete" and not isinstance(value, bool):
            raise HttpError(400, "value must be true or false")
        self._authorize(email_id)
        with gate.write():
            if action == "read":
                done = store.mark_read(email_id, value)
            elif action == "star":
                done = store.star(email_id, value)
            else:
                done = store.delete_email(email_id)
        if not done:
            raise HttpError(404, f"no email {email_id}")
        return 200, {"id": email_id, action: value if action != "delete" else True}

    def _authorize(self, email_id: int) -> None:
        token = self._bearer()
        if token is None:
            raise HttpError(401, "Authorization: Bearer <token of the inbox> is required")
        account = self.server.store.find_account_by_token(token)
        email = self.server.store.get_email(email_id)
        if email is None:
            raise HttpError(404, f"no email {email_id}")
        if account is None or not account.usable() or ascii_lower(account.email) != ascii_lower(email.to_address):
            raise HttpError(403, "that token does not open this email's inbox")

    def _health(self):
        controller = self.server.controller
        status = controller.status()
        store = status.pop("store")
        # the store that decides whether mail is taken must answer; in dual mode that is
        # SQLite, and PostgreSQL down is "degraded" (writes go on, the sync catches up)
        problems = {}
        for name in self.server.store.backends_needed(store["mode"]):
            try:
                getattr(self.server.store, name).ping()
            except Exception as exc:
                problems[name] = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        truth = "sqlite" if store["mode"] == "dual" else store["mode"]
        healthy = truth not in problems
        state = "unavailable" if not healthy else ("degraded" if problems else "ok")
        problem = "; ".join(f"{name}: {text}" for name, text in problems.items()) or None
        payload = {"status": state, "problem": problem, "mode": store["mode"],
                   "paused": status["paused"], "pause": status["pause"], "last_pause": status["last_pause"],
                   "in_flight": status["in_flight"], "counters": store["counters"], "pool": store.get("pool"),
                   **self.server.extra_status()}
        return (200 if healthy else 503), payload

    # -- control -------------------------------------------------------------------------------
    def _check_control(self) -> None:
        peer = ipaddress.ip_address(self.client_address[0])
        if not peer.is_loopback and not self.server.settings["control_remote"]:
            raise HttpError(403, "control calls are accepted from loopback only (service.control_remote)")
        expected = self.server.control_token
        if expected:
            given = self._bearer() or ""
            if not hmac.compare_digest(given.encode(), expected.encode()):
                raise HttpError(401, "control calls need Authorization: Bearer <MAILMIG_CONTROL_TOKEN>")

    def _control(self, method: str, path: str):
        controller = self.server.controller
        if method == "GET" and path == "/control/status":
            return 200, {**controller.status(), **self.server.extra_status()}
        if method != "POST":
            raise HttpError(404, f"no such call: {method} {path}")
        body = self._body()
        pause_id = body.get("pause_id")
        if pause_id is not None and (not isinstance(pause_id, int) or isinstance(pause_id, bool)):
            raise HttpError(400, "pause_id must be an integer")
        if path == "/control/pause":
            limit = body.get("limit_seconds")
            if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, float))):
                raise HttpError(400, "limit_seconds must be a number")
            return 200, controller.pause(limit)
        if path == "/control/resume":
            return 200, controller.resume(pause_id)
        if path == "/control/mode":
            mode = body.get("mode")
            if not isinstance(mode, str):
                raise HttpError(400, "mode is required: sqlite, dual or postgres")
            return 200, controller.switch_mode(mode, pause_id)
        raise HttpError(404, f"no such call: POST {path}")
