"""What the kernel and the server count: bytes written and CPU time, per process.

Two counters of /proc/<pid>/io, both reported:
- `write_bytes`: what the process caused to be sent to the storage layer, counted when it
  dirties a page-cache folio (once until that folio is written back). On kernels whose
  page cache uses large folios (ext4 since Linux 6.16) a small write into a clean folio
  counts the whole folio, so small synchronous writes count far more than they write.
- `wchar`: the bytes the process passed to write calls (files; sockets too, which for a
  database writer are small replies): what the store asked the kernel to write.
A process that exits takes its counters with it: the server's are read while its
connections are still open.
"""

from __future__ import annotations

import os
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def io_counters(pid: int | str = "self") -> tuple[int, int]:
    """(write_bytes - cancelled_write_bytes, wchar) of one process ((0, 0) when it is gone)."""
    try:
        fields = dict(line.split(": ", 1) for line in Path(f"/proc/{pid}/io").read_text().splitlines())
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return 0, 0
    return int(fields["write_bytes"]) - int(fields.get("cancelled_write_bytes", 0)), int(fields["wchar"])


def write_bytes(pid: int | str = "self") -> int:
    return io_counters(pid)[0]


def cpu_seconds(pid: int | str = "self", reaped_children: bool = False) -> float:
    """User + system CPU seconds of a process, all its threads (0 when it is gone); with
    `reaped_children`, plus those of its children that exited and were waited for."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    fields = stat[stat.rindex(")") + 2:].split()
    ticks = int(fields[11]) + int(fields[12])
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLOCK_TICKS


def children_of(parent: int) -> list[int]:
    """The processes whose parent is `parent` (the postmaster's backends and workers)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(stat[stat.rindex(")") + 2:].split()[1]) == parent:
            out.append(int(entry.name))
    return out


def process_title(pid: int) -> str:
    """A server process's title (`postgres: checkpointer`, `postgres: user db [local] idle`)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()[:100]
    except OSError:
        return "?"


class ServerProcesses:
    """Every process of a local PostgreSQL server: the postmaster and its children."""

    def __init__(self, postmaster_pid: int | None):
        self.postmaster = postmaster_pid

    @property
    def measurable(self) -> bool:
        return self.postmaster is not None and Path(f"/proc/{self.postmaster}/io").exists()

    def pids(self) -> list[int]:
        if not self.postmaster:
            return []
        return [self.postmaster, *children_of(self.postmaster)]

    def snapshot(self) -> dict[int, tuple[int, int, float]]:
        """pid -> (write_bytes, wchar, cpu seconds). The postmaster's own I/O is left out:
        Linux adds a reaped child's whole-life I/O counters to its parent's, so a backend
        that disconnects during a measurement (the one that cloned a database before it,
        say) would be counted with everything it ever wrote. Its children are read one by
        one instead; one that exits inside a window takes its writes of that window with it.
        CPU is the other way round: the postmaster's includes its reaped children's, so a
        backend the pool closes inside a window (an idle one, after max_idle) still counts,
        with what it used before the window too (an upper bound by that much)."""
        return {pid: ((0, 0) if pid == self.postmaster else io_counters(pid))
                + (cpu_seconds(pid, reaped_children=pid == self.postmaster),)
                for pid in self.pids()}

    @staticmethod
    def delta(before: dict, after: dict) -> dict:
        """Bytes written and CPU seconds between two snapshots, summed over the processes
        alive at the end (one started in between counts from zero)."""
        written = wchar = cpu = 0.0
        by_process = []
        for pid, (b, w, c) in after.items():
            b0, w0, c0 = before.get(pid, (0, 0, 0.0))
            written += max(0, b - b0)
            wchar += max(0, w - w0)
            cpu += max(0.0, c - c0)
            if max(b - b0, w - w0) >= 1 << 20:  # who wrote what: an outlier can be explained
                by_process.append({"pid": pid, "process": process_title(pid), "write_bytes": b - b0,
                                   "wchar": w - w0, "started_in_window": pid not in before})
        return {"write_bytes": int(written), "wchar": int(wchar), "cpu_seconds": round(cpu, 3),
                "processes": len(after),
                "by_process": sorted(by_process, key=lambda p: -p["write_bytes"])}
