"""What the commands print: tables, and the progress of the long stages (rich).

One table printer for every report (the load's, validate's summary, schema status, cron
list, the cut-over's steps, the benchmarks): numbers right-aligned with thousands
separators, None as '-', booleans as yes/NO. Rendered to text: on an interactive terminal
with rich's box lines, elsewhere (CI logs, pipes, files) in plain ASCII, never wrapped and
without a control character.

Progress of a long stage (staging, the merge, validate's digest) is a `bar`: a rich
progress bar when the command prints to an interactive terminal through a `Say`, else
a line every few seconds through whatever prints the command's lines (print, a test's
no-op), so that logs stay readable.
"""

from __future__ import annotations

import io
import os
import sys
import threading
import time

from rich import box
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Column, Table

# Plain ASCII: a dashed line under the headers, columns two spaces apart.
ASCII_HEAD = box.Box("    \n    \n -  \n    \n    \n -  \n    \n    \n", ascii=True)


def interactive(stream=None) -> bool:
    """Is `stream` (default stdout) a terminal a person watches?"""
    stream = stream or sys.stdout
    return bool(getattr(stream, "isatty", lambda: False)()) and os.environ.get("TERM") != "dumb"


def cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)


def table(headers: list[str], rows: list[list], title: str | None = None, terminal: bool | None = None) -> str:
    """The rows as a text table: a column whose values are all numbers (or None) is
    right-aligned. `terminal` (default: is stdout one) chooses box lines or ASCII."""
    terminal = interactive() if terminal is None else terminal
    numeric = [bool(rows) and all(isinstance(r[i], (int, float)) or r[i] is None for r in rows)
               for i in range(len(headers))]
    out = Table(box=box.SIMPLE_HEAD if terminal else ASCII_HEAD, show_edge=False, pad_edge=False,
                collapse_padding=True, padding=(0, 1), title=title, title_justify="left",
                title_style="bold" if terminal else "")
    for header, is_number in zip(headers, numeric):
        out.add_column(header, justify="right" if is_number else "left", no_wrap=True,
                       header_style="bold" if terminal else "")
    for row in rows:
        out.add_row(*(cell(v) for v in row))
    buffer = io.StringIO()
    Console(file=buffer, width=100_000, color_system=None, force_terminal=False, highlight=False,
            emoji=False, markup=False).print(out)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines())


class Say:
    """Prints a command's lines to a stream; on an interactive terminal through rich, so
    that progress bars stay below the lines printed while they run."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout
        self.live = interactive(self.stream)
        self.console = Console(file=self.stream, highlight=False, markup=False, emoji=False) if self.live else None
        self._lock = threading.Lock()
        self._bars: Progress | None = None
        self._open = 0

    def __call__(self, text: str = "") -> None:
        if self.console is not None:
            self.console.print(text, soft_wrap=True)
        else:
            print(text, file=self.stream, flush=True)

    def _progress(self) -> Progress:
        with self._lock:
            if self._bars is None:
                fixed = Column(no_wrap=True)
                # the note gives way (cut with an ellipsis) when the terminal is narrow
                self._bars = Progress(TextColumn("   {task.description}", table_column=fixed),
                                      BarColumn(bar_width=30), TextColumn("{task.fields[count]}", table_column=fixed),
                                      TimeElapsedColumn(),
                                      TextColumn("{task.fields[note]}",
                                                 table_column=Column(ratio=1, no_wrap=True, overflow="ellipsis")),
                                      console=self.console)
                self._bars.start()
            self._open += 1
            return self._bars

    def _closed(self) -> None:
        with self._lock:
            self._open -= 1
            if self._open == 0 and self._bars is not None:
                self._bars.stop()
                self._bars = None


class Bar:
    """Progress of one long stage towards `total` (rows, ranges...)."""

    def __init__(self, say, label: str, total: int | None, unit: str = "rows", every: float = 5.0,
                 final_line: bool = True):
        self.say, self.label, self.total, self.unit, self.every = say, label, total, unit, every
        self.final_line = final_line  # without a bar: one last line when closed
        self.done = 0
        self.note = ""
        self._last = time.monotonic()
        self._rich = say._progress() if isinstance(say, Say) and say.live else None
        self._task = self._rich.add_task(label, total=total, count=self._count(), note="") if self._rich else None

    def update(self, done: int, note: str = "") -> None:
        """`done` so far; a line at most every `every` seconds when there is no bar."""
        self.done, self.note = done, note
        if self._rich is not None:
            self._rich.update(self._task, completed=done, count=self._count(), note=note)
            return
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            self._line()

    def _count(self) -> str:
        """'done/total unit'; nothing when nothing is counted (the note says what is known)."""
        if self.total is None and not self.done:
            return ""
        of = f"/{self.total:,}" if self.total is not None else ""
        return f"{self.done:,}{of} {self.unit}"

    def _line(self) -> None:
        self.say(f"   {self.label}: " + " ".join(part for part in (self._count(), self.note) if part))

    def close(self) -> None:
        """The final figure: the bar completed, or one last line."""
        if self._rich is not None:
            self._rich.update(self._task, completed=self.done, count=self._count(), note=self.note)
            self._rich.stop_task(self._task)
            self.say._closed()
            self._rich = None
        elif self.final_line:
            self._line()

    def __enter__(self) -> "Bar":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def bar(say, label: str, total: int | None, unit: str = "rows", every: float = 5.0,
        final_line: bool = True) -> Bar:
    return Bar(say, label, total, unit, every, final_line)
