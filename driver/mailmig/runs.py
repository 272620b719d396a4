"""Run directories: each pipeline run keeps its report, snapshot and logs in runs/<run id>/."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path


@dataclass
class Run:
    id: str
    kind: str
    dir: Path

    def write_json(self, name: str, obj) -> Path:
        path = self.dir / name
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n")
        os.replace(tmp, path)  # a reader never sees half a report
        return path


def new_run(runs_dir: Path, kind: str) -> Run:
    """A new, empty run directory named <UTC time>-<kind>-<random>, sortable by time."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    run_id = f"{stamp}-{kind}-{secrets.token_hex(3)}"
    path = Path(runs_dir) / run_id
    path.mkdir(parents=True)
    return Run(run_id, kind, path)


def mark_latest(runs_dir: Path, run: Run) -> None:
    """runs/latest-<kind> names the last completed run of that kind (a relative symlink)."""
    link = Path(runs_dir) / f"latest-{run.kind}"
    tmp = Path(runs_dir) / f".latest-{run.kind}.tmp"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(run.id)
    os.replace(tmp, link)


def latest(runs_dir: Path, kind: str) -> Run | None:
    link = Path(runs_dir) / f"latest-{kind}"
    if not link.exists():
        return None
    target = link.resolve()
    return Run(target.name, kind, target)
