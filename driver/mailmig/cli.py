"""`mailmig`: the command line of the driver.

Each capability module that has commands defines `add_commands(subparsers)`; its
parsers carry `func(args, cfg) -> int`. This module only wires them together.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys

from mailmig import __version__
from mailmig.config import ConfigError, load_config

# Modules that contribute commands, in the order of the pipeline.
COMMAND_MODULES = [
    "mailmig.cli_db",
    "mailmig.demo_data",
    "mailmig.capture",
    "mailmig.load",
    "mailmig.sync",
    "mailmig.validate",
    "mailmig.cron",
    "mailmig.reverse_sync",  # after the forward sync: it adds --reverse to `sync`
    "mailmig.service",
    "mailmig.service.client",
    "mailmig.switch",  # cutover, rollback
    "mailmig.rehearse",
    "mailmig.bench",
]

EPILOG = """\
The pipeline: `mailmig db up` (the project-local cluster, unless POSTGRES_HOST or
POSTGRES_DSN names a server), `mailmig schema apply`, `mailmig demo-data` (a generated
legacy dataset), `mailmig load`, `mailmig validate`. Each step is re-runnable, prints
what it did, and exits non-zero when it did not fully succeed.

Configuration: config/mailmig.yaml (or --config / MAILMIG_CONFIG), overridden by
a .env file and the environment (POSTGRES_HOST, POSTGRES_PORT, POSTGRES_DB,
POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DSN, DB_MODE, EMAILS_DB, AUTH_DB).
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mailmig",
        description="Move the mail store from SQLite to PostgreSQL with zero data loss, prove it, run it.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", help="YAML configuration file (default: config/mailmig.yaml)")
    parser.add_argument("--version", action="version", version=f"mailmig {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue  # a capability not built yet
            raise
        module.add_commands(subparsers)
    return parser


def print_json(obj) -> None:
    print(json.dumps(obj, indent=2, default=str))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        print(f"mailmig: configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        return int(args.func(args, cfg) or 0)
    except KeyboardInterrupt:
        print("mailmig: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a clear one-line error instead of a traceback
        if os.environ.get("MAILMIG_DEBUG"):
            raise
        print(f"mailmig {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
