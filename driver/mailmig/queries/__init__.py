"""Driver queries kept as named .sql files beside this module (STYLE: pg_activity).

Each file answers one question and opens with a `--` comment saying which.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

QUERY_DIR = Path(__file__).resolve().parent


@lru_cache(maxsize=None)
def load(name: str) -> str:
    """The text of queries/<name>.sql without its comment lines."""
    text = (QUERY_DIR / f"{name}.sql").read_text()
    return "\n".join(line for line in text.splitlines() if not line.startswith("--")).strip()
