"""The service's control: pause writes, switch the store's mode, resume, status.

The cut-over and the rollback drive the service through these (HTTP under /control,
see http.py):

- pause(limit): writes are held from now on; returns once the writes already in
  flight have finished (or the limit passed), with how many are left. At most `limit`
  seconds (default service.pause_limit, 5 s) later, whatever happens, the held writes
  are released on the mode the service had (the "old store"): resumed_by "hard_limit".
- switch_mode(mode): outside a pause, at once; during a pause, at the resume (and not
  at all if the pause ends by its limit, by shutdown, or the service dies). Before a
  mode takes effect it is written to the state file (atomically: temporary file,
  fsync, rename, fsync of the directory), which wins over DB_MODE at the next start.
- resume(): applies a pending mode (after checking its backends once more; if they fail,
  the writes resume on the old mode and the report says why), releases the held
  writes, and returns the measured pause: write_pause_seconds is the time from the
  first held write to the last released one.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from datetime import datetime, timezone
from pathlib import Path

from mailmig.service.gate import AlreadyPaused, Pause, WriteGate
from mailmig.store import DB_MODES, Store

log = logging.getLogger("mailmig.service")


class ControlError(RuntimeError):
    """A control call that cannot be done now; `status` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 409, detail: dict | None = None):
        super().__init__(message)
        self.status = status
        self.detail = detail or {}


def read_state(path: Path) -> dict | None:
    """The state file's content, or None when there is none."""
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ControlError(f"{path}: unreadable state file: {exc}", 500) from exc
    if state.get("mode") not in DB_MODES:
        raise ControlError(f"{path}: mode {state.get('mode')!r} is not one of {', '.join(DB_MODES)}", 500)
    return state


def write_state(path: Path, state: dict) -> None:
    """Replace the state file atomically and durably."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as handle:
        json.dump(state, handle, indent=2)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


class Controller:
    def __init__(self, store: Store, gate: WriteGate, state_file: Path, pause_limit: float = 5.0):
        self.store = store
        self.gate = gate
        self.state_file = Path(state_file)
        self.pause_limit = pause_limit
        self._lock = threading.RLock()
        self._timer: threading.Timer | None = None
        self.last_pause: dict | None = None
        self.pauses = 0

    # -- the calls ---------------------------------------------------------------------
    def pause(self, limit: float | None = None) -> dict:
        limit = self.pause_limit if limit is None else float(limit)
        if not 0 < limit <= 3600:
            raise ControlError(f"limit_seconds {limit}: expected 0 < limit <= 3600", 400)
        with self._lock:
            try:
                pause = self.gate.start_pause(limit, self.store.mode)
            except AlreadyPaused as exc:
                raise ControlError(str(exc), 409, {"pause": self.gate.report(self.gate.pause)}) from None
            self.pauses += 1
            self._timer = threading.Timer(limit, self._expire, args=(pause.id,))
            self._timer.daemon = True
            self._timer.start()
        log.warning("writes paused (pause %d, hard limit %.1f s, %d in flight)", pause.id, limit,
                    pause.in_flight_at_pause)
        left = self.gate.wait_drained(pause.started + limit)
        report = self.gate.report(pause)
        report.update({"in_flight": left, "drained": left == 0, "mode": self.store.mode})
        return report

    def switch_mode(self, mode: str, pause_id: int | None = None) -> dict:
        if mode not in DB_MODES:
            raise ControlError(f"mode {mode!r}: expected one of {', '.join(DB_MODES)}", 400)
        with self._lock:
            pause = self.gate.pause
            if pause_id is not None and (pause is None or pause.id != pause_id):
                raise ControlError(f"pause {pause_id} is not on (it ended: see last_pause); the mode stays "
                                   f"{self.store.mode}", 409, {"last_pause": self.last_pause})
            try:
                self.store.prepare_mode(mode)
            except Exception as exc:
                raise ControlError(f"mode {mode}: its store cannot serve: {exc}", 503) from None
            if pause is not None:
                pause.pending_mode = mode
                log.warning("mode %s pending: it takes effect when pause %d is resumed", mode, pause.id)
                return {"mode": self.store.mode, "pending_mode": mode, "effective": "at resume",
                        "pause_id": pause.id}
            previous = self._apply_mode(mode, None)
            return {"mode": mode, "previous_mode": previous, "effective": "now", "state_file": str(self.state_file)}

    def resume(self, pause_id: int | None = None) -> dict:
        with self._lock:
            pause = self.gate.pause
            if pause is None or (pause_id is not None and pause.id != pause_id):
                raise ControlError("not paused" if pause is None else f"pause {pause_id} is not on", 409,
                                   {"last_pause": self.last_pause})
            self._cancel_timer()
            if pause.pending_mode and pause.pending_mode != self.store.mode:
                try:
                    self.store.prepare_mode(pause.pending_mode)
                    self._apply_mode(pause.pending_mode, pause.id)
                except Exception as exc:
                    pause.switch_error = f"{type(exc).__name__}: {exc}"
                    log.error("pause %d: mode %s not applied, resuming on %s: %s", pause.id, pause.pending_mode,
                              self.store.mode, pause.switch_error)
            return self._end(pause, "control")

    def status(self) -> dict:
        pause = self.gate.pause
        return {
            "mode": self.store.mode,
            "paused": pause is not None,
            "pause": self.gate.report(pause) if pause else None,
            "last_pause": self.last_pause,
            "pauses": self.pauses,
            "in_flight": self.gate.in_flight,
            "writes_passed": self.gate.writes_passed,
            "pause_limit_seconds": self.pause_limit,
            "state_file": str(self.state_file),
            "store": self.store.status(),
        }

    def release_for_shutdown(self) -> dict | None:
        """At SIGTERM: held writes go on, on the old mode (a pending switch is dropped)."""
        with self._lock:
            pause = self.gate.pause
            if pause is None:
                return None
            self._cancel_timer()
            return self._end(pause, "shutdown")

    # -- inside ---------------------------------------------------------------------------
    def _apply_mode(self, mode: str, pause_id: int | None) -> str:
        """Durably record, then switch; returns the previous mode."""
        previous = self.store.mode
        write_state(self.state_file, {
            "mode": mode, "previous_mode": previous, "set_at": datetime.now(timezone.utc).isoformat(),
            "set_by": "control call" + (f" (pause {pause_id})" if pause_id else ""), "pid": os.getpid()})
        self.store.switch_mode(mode, check=False)
        return previous

    def _end(self, pause: Pause, resumed_by: str) -> dict:
        self.gate.end_pause(resumed_by, self.store.mode)
        report = self.gate.report(pause)
        self.last_pause = report
        log.warning("writes resumed (pause %d, by %s): %d held, write pause %.3f s, mode %s", pause.id, resumed_by,
                    report["held_writes"], report["write_pause_seconds"], self.store.mode)
        return report

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self, pause_id: int) -> None:
        with self._lock:
            pause = self.gate.pause
            if pause is None or pause.id != pause_id:
                return
            self._timer = None
            log.error("pause %d hit its hard limit (%.1f s): writes resume on %s%s", pause_id, pause.limit,
                      self.store.mode, f"; pending mode {pause.pending_mode} dropped" if pause.pending_mode else "")
            self._end(pause, "hard_limit")


def initial_mode(cfg) -> tuple[str, str]:
    """The mode to start in and where it came from: the state file wins over DB_MODE."""
    state = read_state(cfg.state_file)
    if state is not None:
        return state["mode"], f"state file {cfg.state_file} (set {state.get('set_at')}; wins over app.db_mode)"
    return cfg.db_mode, "app.db_mode / DB_MODE"

