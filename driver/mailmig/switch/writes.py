"""How the cut-over and the rollback hold and switch the application's writes.

Two ways, one interface:

- `ServiceWrites`: the reference service's control calls (`mailmig serve`, issue 13):
  pause (held SMTP replies and API writes, never a 4xx; returns once the writes in
  flight finished), a mode switch that takes effect at the resume, resume (returns the
  measured pause: first held write to last released). The service's own hard limit is
  the procedure's: if this process dies, the service resumes on the old store by itself.
- `HookWrites`: shell commands for another application (`cutover.pause_command`,
  `switch_command`, `resume_command`), e.g. the seed plan's
  `docker-compose stop smtp-server` / edit DB_MODE / `docker-compose start smtp-server`.
  The switch command gets the mode in MAILMIG_MODE. Without a service to ask, the pause
  is measured here: from the pause command's start to the resume command's end.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass

from mailmig.service.client import ControlClient, ControlRefused


class WritesError(RuntimeError):
    """Holding, switching or releasing the writes failed; the message says which and why."""


@dataclass
class Released:
    """What the resume reports."""

    mode: str | None  # the mode writes resumed on (None: not known)
    switched: bool
    write_pause_s: float | None  # first held write to last released (None: not measurable)
    paused_s: float  # the pause from start to release
    held_writes: int | None
    longest_hold_s: float | None
    resumed_by: str  # control | hard_limit | shutdown | hooks
    switch_error: str | None
    detail: dict


class ServiceWrites:
    kind = "service"

    def __init__(self, client: ControlClient):
        self.client = client
        self.pause_id: int | None = None

    def describe(self) -> str:
        return f"the service's control calls at {self.client.base_url}"

    def current_mode(self) -> str:
        try:
            status = self.client.status()
        except ControlRefused as exc:
            raise WritesError(f"the service at {self.client.base_url} refused its status call: {exc}") from None
        except OSError as exc:
            raise WritesError(f"the service at {self.client.base_url} does not answer: {exc}") from None
        if status.get("paused"):
            raise WritesError(f"the service is paused already (pause {status['pause']['pause_id']}, "
                              f"started {status['pause']['started_at']}): another switch runs, or an operator "
                              "paused it")
        return status["mode"]

    def pause(self, limit_s: float) -> dict:
        try:
            report = self.client.pause(limit_s)
        except ControlRefused as exc:
            raise WritesError(f"pause refused: {exc}") from None
        except OSError as exc:
            raise WritesError(f"pause call failed: {exc}") from None
        self.pause_id = report["pause_id"]
        if not report.get("drained", True):
            raise WritesError(f"{report.get('in_flight')} writes were still in flight when the pause returned")
        return report

    def switch(self, mode: str, timeout_s: float) -> dict:
        self.client.timeout = max(0.2, timeout_s)
        try:
            return self.client.switch_mode(mode, pause_id=self.pause_id)
        except ControlRefused as exc:
            raise WritesError(f"switch to {mode} refused: {exc}") from None
        except OSError as exc:
            raise WritesError(f"switch call failed: {exc}") from None

    def resume(self, timeout_s: float = 30.0) -> Released:
        self.client.timeout = max(1.0, timeout_s)
        try:
            report = self.client.resume(pause_id=self.pause_id)
        except ControlRefused as exc:
            last = exc.payload.get("last_pause") or {}
            if last.get("pause_id") == self.pause_id:
                # the pause had ended already: by the service's hard limit, on the old store
                return self._released(last)
            raise WritesError(f"resume refused: {exc}") from None
        except OSError as exc:
            raise WritesError(f"resume call failed: {exc} (the service resumes by itself at its hard "
                              "limit, on the old store, if it is alive)") from None
        return self._released(report)

    @staticmethod
    def _released(report: dict) -> Released:
        return Released(report.get("mode_after"), bool(report.get("switched")), report.get("write_pause_seconds"),
                        report.get("paused_seconds") or 0.0, report.get("held_writes"),
                        report.get("longest_hold_seconds"), report.get("resumed_by") or "control",
                        report.get("switch_error"), report)


class HookWrites:
    kind = "hooks"

    def __init__(self, pause_command: str, resume_command: str, switch_command: str, cwd: str | None = None):
        missing = [name for name, value in (("cutover.pause_command", pause_command),
                                            ("cutover.resume_command", resume_command),
                                            ("cutover.switch_command", switch_command)) if not value]
        if missing:
            raise WritesError("cutover.control is 'hooks' but " + ", ".join(missing) + " not set")
        self.commands = {"pause": pause_command, "resume": resume_command, "switch": switch_command}
        self.cwd = cwd
        self.paused_at: float | None = None
        self.mode: str | None = None
        self.log: list[dict] = []

    def describe(self) -> str:
        return "hook commands (" + "; ".join(f"{k}: {v}" for k, v in self.commands.items()) + ")"

    def current_mode(self) -> str | None:
        return None  # an application of its own: the switch records what it set

    def _run(self, which: str, timeout_s: float, mode: str | None = None) -> None:
        env = dict(os.environ)
        if mode:
            env["MAILMIG_MODE"] = mode
        started = time.monotonic()
        try:
            done = subprocess.run(self.commands[which], shell=True, cwd=self.cwd, env=env, capture_output=True,
                                  text=True, timeout=max(0.1, timeout_s))
        except subprocess.TimeoutExpired:
            self.log.append({"hook": which, "exit": None, "seconds": round(time.monotonic() - started, 3)})
            raise WritesError(f"{which} hook `{self.commands[which]}` did not finish within {timeout_s:.1f} s") \
                from None
        self.log.append({"hook": which, "exit": done.returncode, "seconds": round(time.monotonic() - started, 3),
                         "stderr": done.stderr[-500:]})
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["(no output)"]
            raise WritesError(f"{which} hook `{self.commands[which]}` failed with exit status {done.returncode}: "
                              f"{tail[0]}")

    def pause(self, limit_s: float) -> dict:
        self.paused_at = time.monotonic()
        self._run("pause", limit_s)
        return {"hook": self.commands["pause"]}

    def switch(self, mode: str, timeout_s: float) -> dict:
        self._run("switch", timeout_s, mode)
        self.mode = mode
        return {"mode": mode}

    def resume(self, timeout_s: float = 30.0) -> Released:
        self._run("resume", timeout_s)
        paused = time.monotonic() - (self.paused_at or time.monotonic())
        return Released(self.mode, self.mode is not None, None, round(paused, 6), None, None, "hooks", None,
                        {"hooks": self.log})
