"""Shared set-up of the benchmarks: the local cluster, fresh databases, the dataset."""

from __future__ import annotations

import json
import sys
import time
from datetime import date
from pathlib import Path

import psycopg
from psycopg import sql

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT / "driver"))

from mailmig.config import load_config  # noqa: E402
from mailmig.demo_data import generate  # noqa: E402
from mailmig.sqlrunner import apply_sql  # noqa: E402

SCALES = {"small": (5000, 4000), "seed": (261000, 250000)}
END = date(2026, 11, 1)


def cluster_conninfo(dbname: str) -> str:
    """Start the project-local cluster (or use the configured server) and return a conninfo."""
    cfg = load_config()
    if cfg.is_local:
        cluster = cfg.cluster()
        cluster.start()
    return cfg.conninfo(dbname)


def fresh_database(name: str, schema: bool = True) -> str:
    admin = cluster_conninfo("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = cluster_conninfo(name)
    if schema:
        apply_sql(dsn)
    return dsn


def dataset(scale: str, base: Path = PROJECT / "data" / "bench") -> Path:
    """The generated legacy files of that scale, made once and reused (same seed, same end)."""
    emails, accounts = SCALES[scale]
    out = base / scale
    marker = out / "bench-dataset.json"
    wanted = {"emails": emails, "accounts": accounts, "seed": 42, "end": END.isoformat()}
    if marker.exists() and json.loads(marker.read_text()) == wanted and (out / "emails.db").exists():
        return out
    print(f"generating the {scale} dataset into {out} ...", flush=True)
    started = time.monotonic()
    generate(out, emails=emails, accounts=accounts, seed=42, end=END)
    print(f"  generated in {time.monotonic() - started:.1f} s", flush=True)
    marker.write_text(json.dumps(wanted))
    return out
