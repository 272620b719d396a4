"""Time the legacy data generator (`make bench-demo-data`, SCALE=seed for the issue's target).

Generates into a scratch directory (deleted afterwards unless --keep) and prints the
seconds, rows/s, MB/s and file sizes. The issue's target: 261,000 emails and 250,000
accounts, emails.db about 2 GB, in under 60 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from mailmig.demo_data import generate

TARGET_SECONDS = 60


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--emails", type=int, default=5000)
    parser.add_argument("--accounts", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--end", type=date.fromisoformat, default=None, help="YYYY-MM-DD (default today, UTC)")
    parser.add_argument("--out", type=Path, help="directory to generate into (default: a new one under /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    args = parser.parse_args(argv)

    out = args.out or Path(tempfile.mkdtemp(prefix="gen-bench-", dir="/tmp"))
    load_before = os.getloadavg()[0]
    try:
        started = time.monotonic()
        summary = generate(out, args.emails, args.accounts, seed=args.seed, end=args.end)
        seconds = time.monotonic() - started
        rows = summary["rows"]
        total_rows = sum(r["rows"] for r in rows.values() if isinstance(r, dict))
        size = summary["bytes"]
        print(f"demo-data bench: --emails {args.emails} --accounts {args.accounts} (seed {args.seed}, "
              f"end {summary['end']}), {os.cpu_count()} CPUs, load average before {load_before:.1f}")
        print(f"  seconds      {seconds:8.1f}   (target < {TARGET_SECONDS} s at seed scale)")
        print(f"  rows         {total_rows:8,}   ({total_rows / seconds:,.0f} rows/s; emails "
              f"{rows['emails']['rows']:,} at {rows['emails']['rows'] / seconds:,.0f}/s)")
        print(f"  written      {size['total'] / 1e6:8,.1f} MB ({size['total'] / 1e6 / seconds:,.1f} MB/s)")
        print(f"  emails.db    {size['emails.db'] / 1e6:8,.1f} MB "
              f"({size['emails.db'] / max(1, rows['emails']['rows']) / 1024:.2f} KiB per email incl. indexes, FTS)")
        print(f"  auth.db      {size['auth.db'] / 1e6:8,.1f} MB")
        detail = summary["seconds_detail"]
        print(f"  phases       emails rows {detail['emails_rows']} s, waiting for FTS {detail['emails_fts_wait']} s, "
              f"auth (parallel) {detail['auth']} s")
        cpu = summary["cpu_seconds"]
        print(f"  CPU seconds  emails rows {cpu['emails_rows']}, FTS index {cpu['emails_fts']}, auth {cpu['auth']} "
              f"(sum {sum(v or 0 for v in cpu.values()):.1f} over 3 processes)")
        print(f"  load average after {os.getloadavg()[0]:.1f} (other work on the machine slows this down)")
    finally:
        if args.keep:
            print(f"  kept in {out}")
        else:
            shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
