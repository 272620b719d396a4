"""One load at a time: the advisory lock of mailmig.runlock, as the load and the sync take it."""

import os
import signal
import subprocess
import sys
import time

import psycopg
import pytest

from mailmig.runlock import RunLockBusy, exclusive_run


def test_a_second_run_fails_at_once_naming_the_first(dsn):
    with exclusive_run(dsn, "load", "20261130T000000Z-load-aaaaaa"):
        started = time.monotonic()
        with pytest.raises(RunLockBusy) as busy:
            with exclusive_run(dsn, "sync", "20261130T000001Z-sync-bbbbbb"):
                pytest.fail("the second run got the lock")
        assert time.monotonic() - started < 5  # at once, not after a wait
    message = str(busy.value)
    assert "'mailmig load 20261130T000000Z-load-aaaaaa'" in message
    assert "sync did not start" in message
    with exclusive_run(dsn, "sync", "20261130T000002Z-sync-cccccc"):
        pass  # free again once the first ended


def test_other_databases_are_not_held(pg, dsn, conn):
    conn.execute("CREATE DATABASE mailmig_runlock_other")
    try:
        other = pg.conninfo("mailmig_runlock_other")
        with exclusive_run(dsn, "load", "one"), exclusive_run(other, "load", "two"):
            pass
    finally:
        conn.execute("DROP DATABASE mailmig_runlock_other WITH (FORCE)")


def test_a_killed_holder_releases_the_lock(dsn):
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\n"
         "from mailmig.runlock import exclusive_run\n"
         "with exclusive_run(sys.argv[1], 'load', 'killed-run'):\n"
         "    print('held', flush=True)\n"
         "    time.sleep(600)\n", dsn],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunLockBusy, match="mailmig load killed-run"):
            with exclusive_run(dsn, "load", "second"):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        holder.stdout.close()
    deadline = time.monotonic() + 10  # the server notices the closed socket
    while True:
        try:
            with exclusive_run(dsn, "load", "after-the-kill"):
                break
        except RunLockBusy:
            assert time.monotonic() < deadline, "the lock outlived its holder"
            time.sleep(0.1)
