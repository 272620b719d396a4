"""Partition lifecycle of mail.emails with a fixed clock: premake, the load's months,
the default partition, retention."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors


def partitions(conn):
    return [r[0] for r in conn.execute("SELECT partition::text FROM mail.email_partitions()")]


def add(conn, message_id, created_at):
    return conn.execute(
        "INSERT INTO mail.emails (message_id, from_address, to_address, created_at)"
        " VALUES (%s, 'f', 't', %s) RETURNING id",
        (message_id, created_at),
    ).fetchone()[0]


def guard_ids(conn):
    return {r[0] for r in conn.execute("SELECT message_id FROM mail.message_id_guard")}


def test_ensure_partitions_creates_the_current_month_and_the_ones_ahead(conn):
    created = [r[0] for r in conn.execute("SELECT mail.ensure_partitions(3, '2030-11-20 12:00+00')")]
    assert created == ["emails_p203011", "emails_p203012", "emails_p203101", "emails_p203102"]
    assert [r[0] for r in conn.execute("SELECT mail.ensure_partitions(3, '2030-12-01 00:00+00')")] == [
        "emails_p203103"
    ]
    assert [r[0] for r in conn.execute("SELECT mail.ensure_partitions(0, '2030-12-31 23:59+00')")] == []


def test_bounds_are_utc_whatever_the_session_timezone(conn):
    conn.execute("SET timezone = 'Pacific/Kiritimati'")  # UTC+14
    # 2030-06-01 05:00 in Kiritimati is still May in UTC
    assert [r[0] for r in conn.execute("SELECT mail.ensure_partitions(0, '2030-06-01 05:00+14')")] == [
        "emails_p203005"
    ]
    conn.execute("SET timezone = 'UTC'")
    assert conn.execute(
        "SELECT lower_bound::text, upper_bound::text FROM mail.email_partitions()"
        " WHERE partition = 'mail.emails_p203005'::regclass"
    ).fetchone() == ("2030-05-01 00:00:00+00", "2030-06-01 00:00:00+00")
    add(conn, "<edge@x>", "2030-05-31 23:59:59.999999+00")
    assert conn.execute("SELECT tableoid::regclass::text FROM mail.emails").fetchone()[0] == "mail.emails_p203005"


def test_ensure_partitions_for_months_takes_outliers_and_duplicates(conn):
    created = [r[0] for r in conn.execute(
        "SELECT mail.ensure_partitions_for_months(ARRAY['1999-12-31', '2030-02-14', '1999-12-01', NULL]::date[])"
    )]
    assert created == ["emails_p199912", "emails_p203002"]
    assert {"mail.emails_p199912", "mail.emails_p203002"} <= set(partitions(conn))


def retention_log(conn):
    return conn.execute("SELECT partition, row_count, upper_bound::text, guard_released, dropped_at IS NOT NULL "
                        "FROM mail.retention_log ORDER BY id").fetchall()


def test_drop_expired_partitions_drops_exactly_those_wholly_older(conn):
    conn.execute("SELECT mail.ensure_partitions_for_months(ARRAY['2019-10-01', '2019-11-01', '2019-12-01',"
                 " '2020-01-01', '2020-02-01', '2020-03-01', '2020-04-01']::date[])")
    for month in ("2019-10", "2019-11", "2019-12", "2020-02", "2020-03", "2020-04"):
        add(conn, f"<{month}@x>", f"{month}-15 12:00+00")
    # p_now 2020-04-15, 90 days: cutoff 2020-01-16. January 2020 ends after the
    # cutoff; it holds an old row and one newer than the cutoff: it survives.
    add(conn, "<2020-01-old@x>", "2020-01-02 00:00+00")
    add(conn, "<2020-01-new@x>", "2020-01-20 00:00+00")
    before = set(partitions(conn))
    called = conn.execute("CALL mail.drop_expired_partitions('90 days', '2020-04-15 00:00+00')").fetchone()
    assert called == (["mail.emails_p201910", "mail.emails_p201911", "mail.emails_p201912"], 3)
    assert retention_log(conn) == [
        ("mail.emails_p201910", 1, "2019-11-01 00:00:00+00", 1, True),
        ("mail.emails_p201911", 1, "2019-12-01 00:00:00+00", 1, True),
        ("mail.emails_p201912", 1, "2020-01-01 00:00:00+00", 1, True),
    ]
    assert set(partitions(conn)) == before - {"mail.emails_p201910", "mail.emails_p201911", "mail.emails_p201912"}
    assert conn.execute("SELECT count(*) FROM pg_class WHERE relname LIKE 'emails_p2019%'").fetchone()[0] == 0
    assert guard_ids(conn) == {"<2020-01-old@x>", "<2020-01-new@x>", "<2020-02@x>", "<2020-03@x>", "<2020-04@x>"}
    # a dropped message_id may arrive again (in a month that still exists)
    add(conn, "<2019-10@x>", "2020-02-01 00:00+00")
    # a second run drops nothing more
    assert conn.execute("CALL mail.drop_expired_partitions('90 days', '2020-04-15 00:00+00')").fetchone() == ([], 0)
    # the cutoff is exclusive of the upper bound: at p_now - keep = 2020-02-01 January goes
    assert conn.execute("CALL mail.drop_expired_partitions('1 day', '2020-02-02 00:00+00')").fetchone() == (
        ["mail.emails_p202001"], 2)
    assert "<2020-01-new@x>" not in guard_ids(conn)


def test_a_row_of_a_month_detached_by_retention_lands_in_the_default_and_stays(conn):
    """After the detach the parent no longer covers the month: a late row of it goes to
    the default partition, where retention keeps it (and says so) rather than drop it."""
    conn.execute("SELECT mail.ensure_partitions_for_months(ARRAY['2019-10-01']::date[])")
    add(conn, "<old@x>", "2019-10-15 12:00+00")
    warnings = []
    conn.add_notice_handler(lambda diag: warnings.append(diag.message_primary))
    assert conn.execute("CALL mail.drop_expired_partitions('90 days', '2020-04-15')").fetchone() == (
        ["mail.emails_p201910"], 1)
    late = add(conn, "<late@x>", "2019-10-20 12:00+00")
    assert conn.execute("SELECT tableoid::regclass::text FROM mail.emails WHERE id = %s", (late,)).fetchone() == (
        "mail.emails_default",)
    assert conn.execute("CALL mail.drop_expired_partitions('90 days', '2020-04-15')").fetchone() == ([], 0)
    assert conn.execute("SELECT count(*) FROM mail.emails WHERE id = %s", (late,)).fetchone()[0] == 1
    assert any("mail.emails_default holds 1 row(s) older than the retention" in w for w in warnings), warnings


def test_drop_expired_partitions_skips_when_another_run_holds_the_lock(conn, dsn):
    conn.execute("SELECT mail.ensure_partitions_for_months(ARRAY['2019-01-01']::date[])")
    with psycopg.connect(dsn) as other:
        other.execute("SELECT pg_advisory_xact_lock(hashtext('mail.drop_expired_partitions'))")
        notices = []
        conn.add_notice_handler(lambda diag: notices.append(diag.message_primary))
        assert conn.execute("CALL mail.drop_expired_partitions('90 days', '2020-01-01')").fetchone() == ([], 0)
        assert any("skipped" in n for n in notices)
    assert conn.execute("CALL mail.drop_expired_partitions('90 days', '2020-01-01')").fetchone() == (
        ["mail.emails_p201901"], 0)


def test_default_partition_report_sees_a_stray_row_and_the_load_moves_it(conn):
    assert conn.execute("SELECT * FROM mail.default_partition_report()").fetchall() == []
    stray = add(conn, "<stray@x>", "2031-07-04 08:00+00")  # no partition for July 2031 yet
    add(conn, "<stray2@x>", "2031-07-09 08:00+00")
    other = add(conn, "<other@x>", "2032-01-01 00:00+00")
    report = conn.execute("SELECT month::text, row_count, oldest::text, newest::text FROM mail.default_partition_report()").fetchall()
    assert report == [
        ("2031-07-01", 2, "2031-07-04 08:00:00+00", "2031-07-09 08:00:00+00"),
        ("2032-01-01", 1, "2032-01-01 00:00:00+00", "2032-01-01 00:00:00+00"),
    ]
    created = [r[0] for r in conn.execute("SELECT mail.ensure_partitions_for_months(ARRAY['2031-07-01']::date[])")]
    assert created == ["emails_p203107"]
    assert conn.execute("SELECT month::text, row_count FROM mail.default_partition_report()").fetchall() == [
        ("2032-01-01", 1)
    ]
    rows = conn.execute("SELECT tableoid::regclass::text, id, message_id FROM mail.emails ORDER BY created_at").fetchall()
    assert rows[0] == ("mail.emails_p203107", stray, "<stray@x>") and rows[2][1] == other
    assert conn.execute("SELECT email_id FROM mail.message_id_guard WHERE message_id = '<stray@x>'").fetchone() == (stray,)
    # the moved rows are still guarded, in their new partition too
    with pytest.raises(errors.UniqueViolation, match="<stray@x>"):
        add(conn, "<stray@x>", "2032-01-02 00:00+00")
    with pytest.raises(errors.UniqueViolation, match="<stray2@x>"):
        conn.execute("INSERT INTO mail.emails_p203107 (message_id, from_address, to_address, created_at)"
                     " VALUES ('<stray2@x>', 'f', 't', '2031-07-10')")
    # the default is attached again and still catches strays
    add(conn, "<later@x>", "2035-01-01 00:00+00")
    assert len(conn.execute("SELECT * FROM mail.default_partition_report()").fetchall()) == 2


def test_expiry_of_accounts_and_sessions(conn):
    conn.execute(
        "INSERT INTO mail.accounts (id, email, expires_at) VALUES"
        " (1, 'live@x', '2030-02-01'), (2, 'expired@x', '2030-01-09'), (3, 'gone@x', '2029-12-20'),"
        " (4, 'forever@x', NULL)"
    )
    conn.execute(
        "INSERT INTO mail.sessions (id, account_id, expires_at) VALUES"
        " ('s1', 1, '2030-01-09'), ('s2', 1, '2030-01-11'), ('s3', 3, NULL), ('s4', 4, NULL)"
    )
    now = "2030-01-10 00:00+00"
    assert conn.execute("SELECT mail.expire_sessions(%s)", (now,)).fetchone() == (1,)
    assert conn.execute("SELECT deactivated, deleted FROM mail.expire_accounts('7 days', %s)", (now,)).fetchone() == (2, 1)
    assert conn.execute("SELECT id, is_active FROM mail.accounts ORDER BY id").fetchall() == [
        (1, True), (2, False), (4, True)
    ]
    assert [r[0] for r in conn.execute("SELECT id FROM mail.sessions ORDER BY id")] == ["s2", "s4"]
