"""The write gate: every write of the service passes it, so that a pause can hold them.

While a pause is on, writes wait at the gate (SMTP replies are held, API writes wait:
never a 4xx, since SMTP clients wait half an hour before retrying one). The gate counts
writes in flight (past the gate, not finished) so that a pause can report when the
store is quiet, and so that a shutdown can drain them. It measures each pause as the
service saw it: from the first held write to the last released one.

Both kinds of waiter are served: threads (the HTTP API) block in `enter`, coroutines
(SMTP, on the event loop) await `enter_async`.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone


class GateClosed(RuntimeError):
    """The service is shutting down: no new writes."""


class AlreadyPaused(RuntimeError):
    pass


@dataclass
class Pause:
    id: int
    limit: float
    mode_before: str
    started: float = field(default_factory=time.monotonic)
    started_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    first_held: float | None = None
    last_released: float | None = None
    held: int = 0
    waiting: int = 0
    longest_hold: float = 0.0
    pending_mode: str | None = None
    ended: float | None = None
    ended_at: datetime | None = None
    resumed_by: str | None = None
    mode_after: str | None = None
    switch_error: str | None = None
    in_flight_at_pause: int = 0

    def report(self) -> dict:
        """The pause's figures, as the control calls return them."""
        end = self.ended if self.ended is not None else time.monotonic()
        write_pause = 0.0
        if self.first_held is not None:
            write_pause = (self.last_released if self.last_released is not None else end) - self.first_held
        return {
            "pause_id": self.id,
            "active": self.ended is None,
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "resumed_by": self.resumed_by,
            "limit_seconds": self.limit,
            "paused_seconds": round(end - self.started, 6),
            "write_pause_seconds": round(write_pause, 6),
            "held_writes": self.held,
            "still_waiting": self.waiting,
            "longest_hold_seconds": round(self.longest_hold, 6),
            "in_flight_at_pause": self.in_flight_at_pause,
            "mode_before": self.mode_before,
            "pending_mode": self.pending_mode,
            "mode_after": self.mode_after,
            "switched": self.mode_after is not None and self.mode_after != self.mode_before,
            "switch_error": self.switch_error,
        }


class WriteGate:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.pause: Pause | None = None
        self.in_flight = 0
        self.closed = False
        self._async_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = []
        self._ids = itertools.count(1)
        self.writes_passed = 0

    # -- writers ---------------------------------------------------------------------
    def _held(self, pause: Pause) -> float:
        now = time.monotonic()
        if pause.first_held is None:
            pause.first_held = now
        pause.held += 1
        pause.waiting += 1
        return now

    def _pass(self, held_by: Pause | None, held_since: float | None) -> None:
        """Called under the lock when a writer goes through."""
        self.in_flight += 1
        self.writes_passed += 1
        if held_by is not None:
            now = time.monotonic()
            held_by.waiting -= 1
            held_by.last_released = max(held_by.last_released or now, now)
            held_by.longest_hold = max(held_by.longest_hold, now - held_since)
            self._cond.notify_all()

    def _give_up(self, held_by: Pause | None) -> None:
        if held_by is not None:
            held_by.waiting -= 1
            self._cond.notify_all()

    def enter(self) -> None:
        """Wait while paused (threads); GateClosed when shutting down."""
        with self._cond:
            held_by, held_since = None, None
            while True:
                if self.closed:
                    self._give_up(held_by)
                    raise GateClosed("the service is shutting down")
                if self.pause is None:
                    self._pass(held_by, held_since)
                    return
                if held_by is None:
                    held_by, held_since = self.pause, self._held(self.pause)
                self._cond.wait(timeout=0.5)

    async def enter_async(self) -> None:
        """Wait while paused (coroutines); GateClosed when shutting down."""
        loop = asyncio.get_running_loop()
        held_by, held_since = None, None
        while True:
            with self._cond:
                if self.closed:
                    self._give_up(held_by)
                    raise GateClosed("the service is shutting down")
                if self.pause is None:
                    self._pass(held_by, held_since)
                    return
                if held_by is None:
                    held_by, held_since = self.pause, self._held(self.pause)
                future = loop.create_future()
                self._async_waiters.append((loop, future))
            try:
                await asyncio.wait_for(future, 0.5)
            except asyncio.TimeoutError:
                pass
            except asyncio.CancelledError:
                with self._cond:
                    self._give_up(held_by)
                raise

    def leave(self) -> None:
        with self._cond:
            self.in_flight -= 1
            self._cond.notify_all()

    @contextmanager
    def write(self):
        self.enter()
        try:
            yield
        finally:
            self.leave()

    # -- the pause -----------------------------------------------------------------------
    def report(self, pause: Pause) -> dict:
        """A pause's figures read under the gate's lock: a writer passing at that moment
        updates several of them at once, and a report must not mix before and after."""
        with self._cond:
            return pause.report()

    def start_pause(self, limit: float, mode: str) -> Pause:
        with self._cond:
            if self.pause is not None:
                raise AlreadyPaused(f"pause {self.pause.id} is on")
            self.pause = Pause(id=next(self._ids), limit=limit, mode_before=mode)
            self.pause.in_flight_at_pause = self.in_flight
            return self.pause

    def wait_drained(self, until: float) -> int:
        """Wait (up to the monotonic time `until`) for the writes in flight to finish;
        the number still in flight."""
        with self._cond:
            while self.in_flight > 0 and time.monotonic() < until:
                self._cond.wait(timeout=max(0.0, min(0.05, until - time.monotonic())))
            return self.in_flight

    def _wake_all(self) -> None:
        self._cond.notify_all()
        waiters, self._async_waiters = self._async_waiters, []
        for loop, future in waiters:
            try:
                loop.call_soon_threadsafe(_set_done, future)
            except RuntimeError:  # that loop is closed
                pass

    def end_pause(self, resumed_by: str, mode_after: str, settle: float = 2.0) -> Pause:
        """Release every held write; returns once they all went through (or `settle` s)."""
        with self._cond:
            pause = self.pause
            if pause is None:
                raise RuntimeError("not paused")
            self.pause = None
            pause.ended = time.monotonic()
            pause.ended_at = datetime.now(timezone.utc)
            pause.resumed_by = resumed_by
            pause.mode_after = mode_after
            self._wake_all()
            deadline = time.monotonic() + settle
            while pause.waiting > 0 and time.monotonic() < deadline:
                self._cond.wait(timeout=0.02)
            return pause

    def close(self) -> None:
        """No write passes from now on (held ones get GateClosed)."""
        with self._cond:
            self.closed = True
            self._wake_all()


def _set_done(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)
