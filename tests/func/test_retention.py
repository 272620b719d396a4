"""Retention never stalls ingest: mail.drop_expired_partitions while writers insert through
mail.insert_email and readers search through mail.search_emails; its lock waits are
bounded and retried, and a month is dropped whole or not at all.

Figures (the longest insert stall with and without retention) are the benchmark's:
`make bench-retention`. These tests check behaviour: no errors, the month and its guard
entries gone, every insert stored, and that no insert waits behind retention's own wait.
"""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from psycopg import errors

EXPIRED = "2019-10"
NOW = "2020-04-15 00:00+00"  # 90 days before it, October 2019 is wholly expired


@pytest.fixture
def expired_month(conn):
    """October 2019 with 3,000 emails, and the current months the writers use."""
    conn.execute("SELECT mail.ensure_partitions_for_months(ARRAY['2019-10-01', '2030-01-01']::date[])")
    conn.execute("INSERT INTO mail.emails (message_id, from_address, to_address, subject, body, created_at) "
                 "SELECT '<old-' || g || '@x>', 'f@x', 't@x', 'parcel ' || g, 'your parcel number ' || g, "
                 "timestamptz '2019-10-01' + g * interval '10 minutes' FROM generate_series(1, 3000) g")
    return conn


class Workers:
    """Writers calling mail.insert_email and readers calling mail.search_emails until
    stopped; every call's end time and duration, and every error, kept."""

    def __init__(self, dsn: str, writers: int, readers: int):
        self.dsn, self.stop = dsn, threading.Event()
        self.inserts: list[tuple[float, float, int | None]] = []  # (end, seconds, id)
        self.searches = 0
        self.errors: list[BaseException] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.write, args=(n,)) for n in range(writers)]
        self.threads += [threading.Thread(target=self.read) for _ in range(readers)]

    def write(self, n: int) -> None:
        try:
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                for i in range(1_000_000):
                    if self.stop.is_set():
                        return
                    started = time.monotonic()
                    new_id = conn.execute(
                        "SELECT mail.insert_email(%s, 'f@x', 't@x', 'hello', 'a parcel for you', NULL, NULL, "
                        "'raw', 3, '2030-01-15 12:00+00')", (f"<w{n}-{i}@x>",)).fetchone()[0]
                    ended = time.monotonic()
                    with self.lock:
                        self.inserts.append((ended, ended - started, new_id))
                    time.sleep(0.01)
        except BaseException as exc:
            self.errors.append(exc)

    def read(self) -> None:
        try:
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                while not self.stop.is_set():
                    conn.execute("SELECT count(*) FROM mail.search_emails('parcel')").fetchone()
                    with self.lock:
                        self.searches += 1
                    time.sleep(0.02)
        except BaseException as exc:
            self.errors.append(exc)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)


def test_retention_drops_a_month_while_writers_and_readers_run(expired_month, dsn):
    conn = expired_month
    with Workers(dsn, writers=8, readers=2) as work:
        time.sleep(1.0)
        started = time.monotonic()
        called = conn.execute("CALL mail.drop_expired_partitions('90 days', %s, p_batch => 500)", (NOW,)).fetchone()
        ended = time.monotonic()
        time.sleep(0.5)
    assert not work.errors, work.errors[:3]
    assert called == (["mail.emails_p201910"], 3000)
    # the writers went on while retention ran: inserts finished inside its window
    assert [e for e, _, _ in work.inserts if started < e < ended], "no insert completed while retention ran"
    assert work.searches > 0
    log = conn.execute("SELECT row_count, guard_released, detach_attempts, dropped_at IS NOT NULL "
                       "FROM mail.retention_log").fetchall()
    assert log[0][:2] == (3000, 3000) and log[0][3]
    assert conn.execute("SELECT count(*) FROM mail.message_id_guard WHERE message_id LIKE '<old-%'").fetchone()[0] == 0
    # every insert is stored once, and guarded
    ids = [i for _, _, i in work.inserts if i is not None]
    assert len(ids) == len(work.inserts) > 0
    assert conn.execute("SELECT count(*) FROM mail.emails WHERE id = ANY(%s)", (ids,)).fetchone()[0] == len(ids)
    assert conn.execute("SELECT count(*) FROM mail.emails").fetchone()[0] == \
        conn.execute("SELECT count(*) FROM mail.message_id_guard").fetchone()[0]


def test_a_long_reader_delays_retention_but_never_queues_inserts_behind_it(expired_month, dsn):
    """A search that holds mail.emails for 3 s: retention's ACCESS EXCLUSIVE request, which
    would queue every insert behind it, is given up after 50 ms and retried until the
    reader ends. Inserts meanwhile wait no longer than that bound (the old function waited
    up to 5 s in the queue, holding the inserts with it)."""
    conn = expired_month
    reader = psycopg.connect(dsn)
    reader.execute("SELECT count(*) FROM mail.emails")  # AccessShare on the parent, held
    with Workers(dsn, writers=2, readers=0) as work:
        releaser = threading.Timer(3.0, reader.rollback)
        releaser.start()
        started = time.monotonic()
        called = conn.execute("CALL mail.drop_expired_partitions('90 days', %s, p_lock_timeout => '50 ms', "
                              "p_attempts => 1000)", (NOW,)).fetchone()
        waited = time.monotonic() - started
        releaser.join()
    reader.close()
    assert not work.errors, work.errors[:3]
    assert called == (["mail.emails_p201910"], 3000)
    attempts = conn.execute("SELECT detach_attempts FROM mail.retention_log").fetchone()[0]
    assert attempts > 1 and waited >= 2.5, (attempts, waited)  # the reader did hold it off
    during = [seconds for ended, seconds, _ in work.inserts if started < ended < started + waited]
    assert len(during) > 20, "the writers did not run while retention waited"
    assert max(during) < 1.0, f"an insert waited {max(during):.2f} s behind retention"


def test_retention_that_cannot_get_its_lock_fails_loudly_and_changes_nothing(expired_month, dsn):
    conn = expired_month
    with psycopg.connect(dsn) as reader:
        reader.execute("SELECT count(*) FROM mail.emails")  # held for the whole call
        with pytest.raises(errors.LockNotAvailable, match="were not granted within 5 attempts"):
            conn.execute("CALL mail.drop_expired_partitions('90 days', %s, p_lock_timeout => '20 ms', "
                         "p_attempts => 5)", (NOW,))
    assert "mail.emails_p201910" in [r[0] for r in conn.execute("SELECT partition::text FROM mail.email_partitions()")]
    assert conn.execute("SELECT count(*) FROM mail.retention_log").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM mail.emails").fetchone()[0] == 3000
    # and the lock of a failed run is released: the next run goes through
    assert conn.execute("CALL mail.drop_expired_partitions('90 days', %s)", (NOW,)).fetchone() == (
        ["mail.emails_p201910"], 3000)


def test_a_run_that_stopped_after_the_detach_is_finished_by_the_next(expired_month, dsn):
    """A crash between the steps: the month is detached (logged), its guard entries not
    released. The next run releases them and drops it."""
    conn = expired_month
    conn.execute("ALTER TABLE mail.emails DETACH PARTITION mail.emails_p201910")
    conn.execute("ALTER TABLE mail.emails_p201910 RENAME TO emails_p201910_expired_9")
    conn.execute("INSERT INTO mail.retention_log (partition, detached_as, lower_bound, upper_bound, detach_attempts)"
                 " VALUES ('mail.emails_p201910', 'mail.emails_p201910_expired_9', '2019-10-01', '2019-11-01', 1)")
    assert conn.execute("SELECT count(*) FROM mail.message_id_guard WHERE message_id LIKE '<old-%'").fetchone()[0] == 3000
    assert conn.execute("CALL mail.drop_expired_partitions('90 days', %s)", (NOW,)).fetchone() == (
        ["mail.emails_p201910"], 3000)
    assert conn.execute("SELECT to_regclass('mail.emails_p201910_expired_9')").fetchone()[0] is None
    assert conn.execute("SELECT count(*) FROM mail.message_id_guard WHERE message_id LIKE '<old-%'").fetchone()[0] == 0
