"""A client of the service's control calls (the cut-over and rollback use it), and
`mailmig control status|pause|resume|mode` for operators.

    client = ControlClient("http://127.0.0.1:4000", token=None)
    pause = client.pause(limit_seconds=5)      # returns once in-flight writes finished
    client.switch_mode("postgres", pause_id=pause["pause_id"])
    report = client.resume(pause_id=pause["pause_id"])
    report["write_pause_seconds"], report["switched"], report["resumed_by"]

Every call returns the service's JSON; a refusal raises ControlRefused with the HTTP
status and that JSON (e.g. 409 when the pause had already ended by its hard limit).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from mailmig.cli import print_json


class ControlRefused(RuntimeError):
    def __init__(self, status: int, payload: dict):
        super().__init__(f"HTTP {status}: {payload.get('error', payload)}")
        self.status = status
        self.payload = payload


class ControlClient:
    def __init__(self, base_url: str, token: str | None = None, timeout: float = 30.0):
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.timeout = timeout

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if self._token:
            request.add_header("Authorization", f"Bearer {self._token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            try:
                payload = json.loads(exc.read())
            except ValueError:
                payload = {"error": exc.reason}
            raise ControlRefused(exc.code, payload) from None

    def status(self) -> dict:
        return self._call("GET", "/control/status")

    def pause(self, limit_seconds: float | None = None) -> dict:
        return self._call("POST", "/control/pause", {} if limit_seconds is None else {"limit_seconds": limit_seconds})

    def switch_mode(self, mode: str, pause_id: int | None = None) -> dict:
        body = {"mode": mode}
        if pause_id is not None:
            body["pause_id"] = pause_id
        return self._call("POST", "/control/mode", body)

    def resume(self, pause_id: int | None = None) -> dict:
        return self._call("POST", "/control/resume", {} if pause_id is None else {"pause_id": pause_id})

    def health(self) -> dict:
        try:
            return self._call("GET", "/health")
        except ControlRefused as exc:  # 503 still carries the figures
            return exc.payload


def client_for(cfg) -> ControlClient:
    service = cfg.raw["service"]
    host = service["http_host"]
    host = "127.0.0.1" if host in ("0.0.0.0", "") else ("[::1]" if host == "::" else host)
    return ControlClient(f"http://{host}:{service['http_port']}", token=cfg.control_token)


def control(args, cfg) -> int:
    client = client_for(cfg)
    try:
        if args.action == "status":
            result = client.status()
        elif args.action == "pause":
            result = client.pause(args.limit)
        elif args.action == "resume":
            result = client.resume(args.pause_id)
        else:
            result = client.switch_mode(args.mode, args.pause_id)
    except ControlRefused as exc:
        print_json(exc.payload)
        return 1
    except OSError as exc:
        print(f"mailmig control: the service at {client.base_url} does not answer: {exc}")
        return 1
    print_json(result)
    return 0


def add_commands(subparsers) -> None:
    p = subparsers.add_parser("control", help="the running service's control calls: status, pause, resume, mode",
                              description="Calls the control API of `mailmig serve` at service.http_host:http_port "
                                          "(MAILMIG_CONTROL_TOKEN if the service requires it) and prints its JSON.")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("status", help="mode, pause, counters, pool usage")
    pause = actions.add_parser("pause", help="hold writes (returns once in-flight writes finished)")
    pause.add_argument("--limit", type=float, help="hard limit in seconds (default service.pause_limit)")
    resume = actions.add_parser("resume", help="release held writes; prints the measured pause")
    resume.add_argument("--pause-id", type=int)
    mode = actions.add_parser("mode", help="switch the store's mode (during a pause: at the resume)")
    mode.add_argument("mode", choices=("sqlite", "dual", "postgres"))
    mode.add_argument("--pause-id", type=int)
    p.set_defaults(func=control)
