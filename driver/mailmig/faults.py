"""Failpoints: named places where the fault tests make the driver fail on purpose.

`MAILMIG_FAULTS="name=action[+action...][;name=...]"` in the environment arms them; unset
(always, in normal use) every point is a no-op. Actions, done in the order given:

- `kill`: print `fault <name>: kill` to stderr and SIGKILL this process (nothing after
  it runs: no finally, no atexit), so a test can prove the kill happened at that point;
- `sleep:<seconds>`: wait there (a drain made slow on purpose);
- `fail`: raise FaultInjected;
- `mark:<path>`: append the point's name to <path> and go on (proves it was reached).

The points a test arms are named where they are called (`faults.point("...")`).
"""

from __future__ import annotations

import os
import signal
import sys
import time

ENV = "MAILMIG_FAULTS"


class FaultInjected(RuntimeError):
    """A failpoint armed with `fail` was reached."""


def _armed() -> dict[str, str]:
    spec = os.environ.get(ENV, "")
    armed = {}
    for item in spec.split(";"):
        name, sep, action = item.strip().partition("=")
        if name and sep:
            armed[name.strip()] = action.strip()
    return armed


def point(name: str) -> None:
    """Do what MAILMIG_FAULTS says for `name` (nothing when not armed)."""
    if ENV not in os.environ:
        return
    for action in (_armed().get(name) or "").split("+"):
        if action:
            _do(name, action)


def _do(name: str, action: str) -> None:
    if action == "kill":
        print(f"fault {name}: kill", file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    elif action.startswith("sleep:"):
        print(f"fault {name}: sleep {action[6:]} s", file=sys.stderr, flush=True)
        time.sleep(float(action[6:]))
    elif action == "fail":
        raise FaultInjected(f"fault {name}: injected failure")
    elif action.startswith("mark:"):
        with open(action[5:], "a") as f:
            f.write(name + "\n")
    else:
        raise ValueError(f"{ENV}: unknown action {action!r} for {name}")
