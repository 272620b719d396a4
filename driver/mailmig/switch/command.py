"""`mailmig cutover` and `mailmig rollback`: the command lines and what they print."""

from __future__ import annotations

from mailmig import console
from mailmig.switch.cutover import run_cutover
from mailmig.switch.procedure import Outcome, Settings
from mailmig.switch.rollback import run_rollback
from mailmig.switch.writes import HookWrites, ServiceWrites

EXIT = {"switched": 0, "nothing_to_do": 0, "aborted": 1, "refused": 3, "unknown": 4}


def writes_for(cfg):
    c = cfg.raw["cutover"]
    if c["control"] == "hooks":
        return HookWrites(c["pause_command"], c["resume_command"], c["switch_command"])
    from mailmig.service.client import client_for

    return ServiceWrites(client_for(cfg))


def settings_for(cfg, args) -> Settings:
    settings = Settings.from_config(cfg)
    if getattr(args, "hard_limit", None):
        settings.hard_limit_s = args.hard_limit
    return settings


def print_outcome(outcome: Outcome) -> None:
    say = print
    if outcome.steps:
        say("")
        say(console.table(["step", "at s (in the pause)", "ms", "ok"],
                          [[s.name, None if s.at_s is None else round(s.at_s, 3), round(s.seconds * 1000, 1), s.ok]
                           for s in outcome.steps]))
    released = outcome.released
    say("")
    if released is not None:
        pause = "not measurable with hooks" if released.write_pause_s is None else f"{released.write_pause_s:.3f} s"
        held = "" if released.held_writes is None else \
            f"; {released.held_writes} writes held, the longest {released.longest_hold_s:.3f} s"
        say(f"write pause: {pause} (first held write to last released){held}; paused {released.paused_s:.3f} s; "
            f"writes resumed on {released.mode} (by {released.resumed_by})")
    verdict = {
        "switched": f"{outcome.kind}: SWITCHED {outcome.from_mode} -> {outcome.to_mode}",
        "nothing_to_do": f"{outcome.kind}: nothing to do (already on {outcome.from_mode})",
        "aborted": f"{outcome.kind}: ABORTED, writes resumed on {outcome.from_mode}, nothing switched: {outcome.reason}",
        "refused": f"{outcome.kind}: REFUSED before any pause: {outcome.reason}",
        "unknown": f"{outcome.kind}: OUTCOME UNKNOWN: {outcome.reason}",
    }[outcome.outcome]
    say(verdict)
    say(f"report: {outcome.report_path}" + ("" if outcome.recorded_in_postgresql else " (not in migration.switches)"))


def cmd_cutover(args, cfg) -> int:
    outcome = run_cutover(cfg.conninfo(), cfg.sources.emails_db, cfg.sources.auth_db, cfg.runs_dir, writes_for(cfg),
                          settings_for(cfg, args), dict(cfg.raw.get("sync") or {}),
                          progress=lambda message: print(message, flush=True))
    print_outcome(outcome)
    return EXIT[outcome.outcome]


def cmd_rollback(args, cfg) -> int:
    outcome = run_rollback(cfg.conninfo(), cfg.sources.emails_db, cfg.sources.auth_db, cfg.runs_dir,
                           writes_for(cfg), settings_for(cfg, args),
                           progress=lambda message: print(message, flush=True))
    print_outcome(outcome)
    return EXIT[outcome.outcome]


EXIT_HELP = "Exit status: 0 switched (or nothing to do), 1 aborted (writes resumed on the old store), " \
            "3 refused by a pre-check (nothing paused), 4 outcome unknown (the service stopped answering)."


def add_commands(subparsers) -> None:
    parser = subparsers.add_parser(
        "cutover", help="switch the application from SQLite to PostgreSQL in a write pause of seconds",
        description="Pre-checks (capture and sync following with lag below cutover.max_sync_lag, the last full "
        "validation passed, reverse capture installed, sequences settable), then: pause writes, take SQLite's "
        "write lock, drain the sync, set the sequences past the largest ids, validate the keys changed since the "
        "last full validation, switch to postgres, resume. Past cutover.hard_limit (5 s) or on any failure the "
        "writes resume on SQLite and nothing changes. Prints and records the measured write pause (runs/ and "
        "migration.switches). " + EXIT_HELP)
    parser.add_argument("--hard-limit", type=float, help="seconds (default cutover.hard_limit)")
    parser.set_defaults(func=cmd_cutover)
    parser = subparsers.add_parser(
        "rollback", help="switch the application back to SQLite, keeping every email PostgreSQL received",
        description="Pre-checks (on postgres, reverse capture installed, the reverse sync started by the "
        "cut-over), the reverse sync catches up, then: pause writes, drain the reverse changes, switch to "
        "cutover.rollback_to (sqlite), resume; the same hard limit and measured pause as the cut-over. A second "
        "rollback finds SQLite active and changes nothing. " + EXIT_HELP)
    parser.add_argument("--hard-limit", type=float, help="seconds (default cutover.hard_limit)")
    parser.set_defaults(func=cmd_rollback)

