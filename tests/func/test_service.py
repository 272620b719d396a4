"""The reference service as a real process, driven by real clients: smtplib, swaks,
urllib. Every mode; the seed's two curl calls' API; hostile SMTP input; the write
pause, its hard limit and its measure; mode switches that survive a restart; SIGTERM
draining a write in flight."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import threading
import time
import urllib.parse

import psycopg
import pytest

from mailmig.store import create_legacy_files
from tests.func.service_process import ServiceProcess, message

MODES = ["sqlite", "dual", "postgres"]


@pytest.fixture
def workdir(tmp_path):
    create_legacy_files(tmp_path / "emails.db", tmp_path / "auth.db")
    return tmp_path


@pytest.fixture
def service_factory(workdir, request):
    started: list[ServiceProcess] = []

    def make(mode: str, **kw) -> ServiceProcess:
        dsn = request.getfixturevalue("dsn") if mode != "sqlite" or kw.pop("with_postgres", False) else None
        service = ServiceProcess(workdir, mode, dsn=kw.pop("dsn", dsn), **kw)
        started.append(service)
        return service

    yield make
    for service in started:
        service.kill()


def sqlite_rows(workdir, query="SELECT id, message_id, to_address, subject FROM emails ORDER BY id"):
    with sqlite3.connect(workdir / "emails.db") as conn:
        return conn.execute(query).fetchall()


def pg_rows(dsn, query="SELECT id, message_id, to_address, subject FROM mail.emails ORDER BY id"):
    with psycopg.connect(dsn) as conn:
        return conn.execute(query).fetchall()


@pytest.mark.parametrize("mode", MODES)
def test_the_seed_calls_swaks_and_smtplib_in_every_mode(service_factory, workdir, mode):
    service = service_factory(mode).start()
    # the seed's first check: curl -X POST http://localhost:4000/api/email/generate
    done = subprocess.run(["curl", "-sS", "-X", "POST", f"http://localhost:{service.http_port}/api/email/generate"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    account = json.loads(done.stdout)
    address = account["email"]
    assert address.endswith("@tempmail.test") and len(account["token"]) == 64
    swaks = service.swaks(address, "Hello from swaks", "swaks body")
    assert swaks.returncode == 0, swaks.stdout + swaks.stderr
    assert "<-  250 2.0.0 OK: stored as" in swaks.stdout
    code, reply = service.send(address, message("Hello from smtplib", "smtplib body", to=address))
    assert code == 250, reply
    # the seed's second check: curl http://localhost:4000/api/json/<address>
    done = subprocess.run(["curl", "-sS", "--fail", f"http://localhost:{service.http_port}/api/json/{address}"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    emails = json.loads(done.stdout)["emails"]
    assert [e["subject"] for e in emails] == ["Hello from smtplib", "Hello from swaks"] or \
        sorted(e["subject"] for e in emails) == ["Hello from smtplib", "Hello from swaks"]
    assert {e["body"].strip() for e in emails} == {"swaks body", "smtplib body"}
    status, found = service.get(f"/api/search?q=swaks&address={address}")
    assert status == 200 and [r["subject"] for r in found["results"]] == ["Hello from swaks"]
    status, health = service.get("/health")
    assert status == 200 and health["mode"] == mode and health["paused"] is False
    assert health["smtp_replies"] == {"250": 2}
    counters = health["counters"]
    if mode == "sqlite":
        assert counters["writes_sqlite"] == 3 and counters["writes_postgres"] == 0 and health["pool"] is None
    elif mode == "postgres":
        assert counters["writes_postgres"] == 3 and counters["writes_sqlite"] == 0
        assert health["pool"]["max_size"] == 20 and health["pool"]["borrows"] > 0
    else:
        assert counters["writes_sqlite"] == 3 and counters["writes_postgres"] == 3
        assert counters["dual_postgres_write_failures"] == 0 and counters["shadow_mismatches"] == 0
    assert service.stop() == 0
    stored_sqlite = [r[2:] for r in sqlite_rows(workdir)]
    stored_pg = [r[2:] for r in pg_rows(service.dsn)] if service.dsn else []
    expected = sorted([(address, "Hello from swaks"), (address, "Hello from smtplib")])
    assert sorted(stored_sqlite) == (expected if mode != "postgres" else [])
    assert sorted(stored_pg) == (expected if mode != "sqlite" else [])
    if mode == "dual":
        assert sqlite_rows(workdir) == pg_rows(service.dsn)  # the same ids in both
    # the token is a secret: neither the log nor the output holds it
    assert account["token"] not in service.log_text


def raw(*header_lines: str, body: bytes = b"body\r\n") -> bytes:
    return b"\r\n".join(h.encode("utf-8", "surrogateescape") if isinstance(h, str) else h
                        for h in header_lines) + b"\r\n\r\n" + body


def test_hostile_smtp_input_is_stored_or_refused_cleanly(service_factory, workdir):
    """In dual mode, so that both stores must take every row the service accepts."""
    service = service_factory("dual", service={"max_message_bytes": 300_000}).start()
    inbox = "hostile@tempmail.test"
    results = {}
    big_subject = "word " * 40_000  # a 200 KB header line
    cases = {
        "huge_header": raw(f"Subject: {big_subject}", "Message-ID: <huge@x>"),
        "eight_bit": raw(b"Subject: caf\xc3\xa9 \xff\xfe bad", b"From: J\xc3\xbcrgen <j@x>", "Message-ID: <8bit@x>",
                         body=b"caf\xc3\xa9 and \xff invalid\r\n"),
        "no_message_id": raw("Subject: no id"),
        "duplicate_headers": raw("Subject: first", "Subject: second", "Received: a", "Received: b",
                                 "Message-ID: <dup-headers@x>"),
        "encoded_words": raw("Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= =?iso-8859-1?b?5g==?=",
                             "From: =?x-unknown?q?abc?= <enc@x>", "Message-ID: <enc@x>"),
        "long_from": raw("From: " + "a" * 10_000 + "@example.org", "Subject: long from", "Message-ID: <longfrom@x>"),
        "long_message_id": raw("Subject: long id", "Message-ID: <" + "i" * 10_000 + "@x>"),
        "only_headers": b"Subject: only headers\r\nMessage-ID: <only@x>\r\n",
        "nul_byte": raw("Subject: nul", "Message-ID: <nul@x>", body=b"before\x00after\r\n"),
        "malformed_mime": raw("Subject: broken mime", "Message-ID: <mime@x>", "MIME-Version: 1.0",
                              "Content-Type: multipart/mixed", body=b"--nope\r\nnot really\r\n"),
        "bad_base64": raw("Subject: bad b64", "Message-ID: <b64@x>", "Content-Transfer-Encoding: base64",
                          "Content-Type: text/plain; charset=x-nothing", body=b"!!!not base64***\r\n"),
    }
    for name, data in cases.items():
        results[name] = service.send(inbox, data)
    assert {name: code for name, (code, _) in results.items()} == {name: 250 for name in cases}
    # the same message again: 250, stored once (the legacy duplicate semantics)
    assert service.send(inbox, cases["long_message_id"])[1] == b"2.0.0 OK: already stored"
    assert service.send(inbox, cases["nul_byte"])[0] == 250

    # an address of 10 KB: refused by the command line limit, the session goes on
    with service.smtp() as client:
        client.ehlo()
        client.mail("s@example.org")
        code, _ = client.rcpt("a" * 10_000 + "@tempmail.test")
        assert code == 500
        assert client.rcpt(inbox)[0] == 250
        assert client.data(raw("Subject: after the long address", "Message-ID: <after@x>"))[0] == 250
    # too big: 552; too many recipients: 452 from the 101st on, the first 100 get it
    assert service.send(inbox, raw("Subject: big", body=b"x" * 400_000))[0] == 552
    with service.smtp() as client:
        client.ehlo()
        client.mail("s@example.org")
        codes = [client.rcpt(f"r{n}@tempmail.test")[0] for n in range(101)]
        assert codes == [250] * 100 + [452]
        assert client.data(raw("Subject: to many", "Message-ID: <many@x>"))[0] == 250
    status, health = service.get("/health")
    assert health["counters"]["dual_postgres_write_failures"] == 0
    assert service.stop() == 0

    rows = {r[1]: r for r in sqlite_rows(workdir, "SELECT id, message_id, from_address, subject, body, headers, "
                                                  "raw_email, size FROM emails ORDER BY id")}
    assert len(rows) == len(cases) + 1 + 100
    assert len(rows) == len(pg_rows(service.dsn))
    by_subject = {r[3][:40] if r[3] else r[3]: r for r in rows.values()}
    assert rows["<huge@x>"][3] == big_subject.strip()
    assert by_subject["café \ufffd\ufffd bad"][4] == "café and \ufffd invalid\r\n"
    assert by_subject["café \ufffd\ufffd bad"][2] == "j@x"
    assert by_subject["no id"][1].endswith("@mailmig.local>")
    assert by_subject["first"][3] == "first"
    assert json.loads(by_subject["first"][5])["Received"] == ["a", "b"]
    assert rows["<enc@x>"][3] == "Grüßeæ"  # RFC 2047: space between encoded words goes and rows["<enc@x>"][2] == "enc@x"
    long_from = rows["<longfrom@x>"]
    assert len(long_from[2].encode()) == 512 and len(json.loads(long_from[5])["From"]) > 10_000
    assert by_subject["long id"][1].endswith(".long-message-id@mailmig.local>")
    assert rows["<only@x>"][4] == ""
    assert rows["<nul@x>"][4] == "before\ufffdafter\r\n" and "\ufffd" in rows["<nul@x>"][6]
    assert rows["<mime@x>"][6].startswith("Subject: broken mime") and rows["<mime@x>"][7] > 0
    assert rows["<b64@x>"][3] == "bad b64"
    many = [r for r in rows.values() if r[1].startswith("<many@x>")]
    assert len(many) == 100 and rows["<many@x>"] is not None
    # the PostgreSQL rows equal the SQLite rows, column by column
    assert pg_rows(service.dsn, "SELECT id, message_id, from_address, subject, body, raw_email, size "
                                "FROM mail.emails ORDER BY id") == [r[:5] + r[6:] for r in rows.values()]


def test_api_writes_need_the_inbox_token(service_factory):
    service = service_factory("sqlite").start()
    account = service.generate()
    other = service.generate()
    assert service.send(account["email"], message("mine", to=account["email"]))[0] == 250
    email_id = service.inbox(account["email"])[0]["id"]
    assert service.post(f"/api/email/{email_id}/read")[0] == 401
    assert service.post(f"/api/email/{email_id}/read", token=other["token"])[0] == 403
    assert service.post(f"/api/email/{email_id}/read", token=account["token"]) == (200, {"id": email_id, "read": True})
    assert service.post(f"/api/email/{email_id}/star", {"value": True}, token=account["token"])[0] == 200
    status, full = service.get(f"/api/email/{email_id}")
    assert status == 200 and full["is_read"] and full["starred"] and "Subject: mine" in full["raw_email"]
    assert service.call("DELETE", f"/api/email/{email_id}", token=account["token"])[0] == 200
    assert service.get(f"/api/email/{email_id}")[0] == 404
    assert service.get("/api/json/" + account["email"].upper())[1]["count"] == 0
    assert service.get("/api/search")[0] == 400
    assert service.get("/api/nothing")[0] == 404
    assert service.stop() == 0


@pytest.mark.parametrize("mode", ["sqlite", "postgres"])
def test_hostile_http_requests_get_a_4xx_not_a_500_or_a_hang(service_factory, mode):
    """What a careless or hostile HTTP client can send: ids beyond bigint, NUL characters
    (PostgreSQL text cannot hold one), a negative Content-Length (a blocking read until
    the client hangs up), search text that is FTS5 or tsquery syntax."""
    service = service_factory(mode).start()
    account = service.generate()
    assert service.send(account["email"], message("invoice payment due", to=account["email"]))[0] == 250
    for path in ("/api/email/9223372036854775808", "/api/email/" + "9" * 400, "/api/email/0"):
        assert service.get(path)[0] == 404, path
        assert service.post(path + "/read", token=account["token"])[0] == 404, path
    for path in ("/api/json/a%00b@tempmail.test", "/api/search?q=a%00b", "/api/search?q=word&address=%00",
                 "/api/search?q%00=word"):
        status, payload = service.get(path)
        assert status == 400 and "NUL" in payload["error"], (path, payload)
    assert service.get("/api/search?q=a&limit=" + "9" * 30)[0] == 400
    assert service.get("/api/email/%D9%A1")[0] == 404  # an Arabic-Indic digit: no such call
    for text in ('"', '" * ^ NEAR( AND OR NOT -', "invoice*", "-", "a:b", "((", "'\\'", "x" * 5000,
                 "invoice " * 200, "\u0660\u00b2", "NEAR(invoice payment, 1)"):
        status, payload = service.get("/api/search?" + urllib.parse.urlencode({"q": text}))
        assert status == 200, (text[:40], payload)
    status, payload = service.get("/api/search?q=" + urllib.parse.quote('"invoice payment"'))
    assert status == 200 and payload["count"] == 1

    with socket.create_connection(("127.0.0.1", service.http_port), timeout=10) as sock:
        sock.sendall(b"POST /api/email/generate HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n")
        reply = b""
        while chunk := sock.recv(4096):  # a hang here times out (10 s): the server waited for a body
            reply += chunk  # the reply is HTTP/1.0: the server closes when it has sent it
    assert reply.startswith(b"HTTP/1.0 400") or reply.startswith(b"HTTP/1.1 400"), reply[:80]
    assert b"negative" in reply
    status, health = service.get("/health")
    assert status == 200
    assert service.stop() == 0


def in_thread(fn, *args):
    result = {}

    def run():
        try:
            result["value"] = fn(*args)
        except Exception as exc:  # reported by the test
            result["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


def test_a_pause_holds_smtp_replies_and_api_writes_and_measures_itself(service_factory, workdir):
    service = service_factory("sqlite").start()
    status, pause = service.post("/control/pause", {"limit_seconds": 30})
    assert status == 200 and pause["drained"] and pause["in_flight"] == 0
    senders = [in_thread(service.send, f"held{n}@tempmail.test", message(f"held {n}")) for n in range(3)]
    api = in_thread(service.generate)
    # held: no reply, nothing stored, the service counts them waiting
    deadline = time.monotonic() + 10
    while service.get("/control/status")[1]["pause"]["held_writes"] < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    status_now = service.get("/control/status")[1]
    assert status_now["paused"] and status_now["pause"]["held_writes"] == 4 and status_now["pause"]["still_waiting"] == 4
    assert all(thread.is_alive() for thread, _ in senders + [api])
    assert sqlite_rows(workdir) == []
    # reads go on during a pause
    assert service.get("/api/json/held0@tempmail.test")[0] == 200
    assert service.post("/control/pause")[0] == 409  # one pause at a time
    status, report = service.post("/control/resume", {"pause_id": pause["pause_id"]})
    assert status == 200
    for thread, _ in senders + [api]:
        thread.join(timeout=30)
    assert [r["value"][0] for _, r in senders] == [250, 250, 250]
    assert api[1]["value"]["email"].endswith("@tempmail.test")
    assert len(sqlite_rows(workdir)) == 3
    assert report["resumed_by"] == "control" and report["held_writes"] == 4 and report["still_waiting"] == 0
    # measured from the first held write to the last released one (which passes the gate
    # just after the resume call ended the pause, so it may exceed paused_seconds a little)
    assert 0.5 <= report["write_pause_seconds"] < 30 and 0.5 <= report["paused_seconds"] < 30
    assert report["longest_hold_seconds"] <= report["write_pause_seconds"]
    assert service.get("/control/status")[1]["last_pause"] == report
    assert service.post("/control/resume")[0] == 409
    assert service.stop() == 0


def test_the_hard_limit_resumes_held_writes_on_the_old_store(service_factory, workdir):
    service = service_factory("sqlite", with_postgres=True).start()
    pause = service.post("/control/pause", {"limit_seconds": 1.0})[1]
    status, pending = service.post("/control/mode", {"mode": "postgres", "pause_id": pause["pause_id"]})
    assert status == 200 and pending["effective"] == "at resume" and pending["mode"] == "sqlite"
    started = time.monotonic()
    code, _ = service.send("late@tempmail.test", message("held past the limit"))
    waited = time.monotonic() - started
    assert code == 250 and 0.3 < waited < 5
    assert [r[3] for r in sqlite_rows(workdir)] == ["held past the limit"]  # the old store
    assert pg_rows(service.dsn) == []
    status, body = service.post("/control/resume", {"pause_id": pause["pause_id"]})
    assert status == 409 and body["last_pause"]["resumed_by"] == "hard_limit"
    assert body["last_pause"]["switched"] is False and body["last_pause"]["held_writes"] == 1
    assert service.post("/control/mode", {"mode": "postgres", "pause_id": pause["pause_id"]})[0] == 409
    assert service.get("/health")[1]["mode"] == "sqlite"
    assert not (workdir / "state" / "service.json").exists()
    assert service.stop() == 0


def test_a_switch_at_resume_takes_the_held_writes_and_survives_a_restart(service_factory, workdir):
    service = service_factory("sqlite", with_postgres=True).start()
    pause = service.post("/control/pause")[1]
    assert service.post("/control/mode", {"mode": "postgres"})[0] == 200
    sender = in_thread(service.send, "switched@tempmail.test", message("held, then stored in postgres"))
    time.sleep(0.5)
    status, report = service.post("/control/resume", {"pause_id": pause["pause_id"]})
    sender[0].join(timeout=30)
    assert status == 200 and report["switched"] and report["mode_after"] == "postgres"
    assert sender[1]["value"][0] == 250
    assert [r[3] for r in pg_rows(service.dsn)] == ["held, then stored in postgres"] and sqlite_rows(workdir) == []
    state = json.loads((workdir / "state" / "service.json").read_text())
    assert state["mode"] == "postgres" and state["previous_mode"] == "sqlite"
    assert service.stop() == 0
    # DB_MODE says sqlite; the state file wins
    service.env["DB_MODE"] = "sqlite"
    service.start()
    assert service.get("/health")[1]["mode"] == "postgres"
    assert "state file" in service.get("/health")[1]["start_mode_origin"]
    assert service.send("switched@tempmail.test", message("after the restart"))[0] == 250
    assert len(pg_rows(service.dsn)) == 2 and sqlite_rows(workdir) == []
    # a switch outside a pause is immediate and durable
    status, switched = service.post("/control/mode", {"mode": "sqlite"})
    assert status == 200 and switched["effective"] == "now" and switched["previous_mode"] == "postgres"
    assert json.loads((workdir / "state" / "service.json").read_text())["mode"] == "sqlite"
    assert service.send("switched@tempmail.test", message("back on sqlite"))[0] == 250
    assert [r[3] for r in sqlite_rows(workdir)] == ["back on sqlite"]
    assert service.stop() == 0


def test_killed_during_a_pause_it_restarts_on_the_old_store(service_factory, workdir):
    service = service_factory("sqlite", with_postgres=True).start()
    service.post("/control/pause", {"limit_seconds": 30})
    assert service.post("/control/mode", {"mode": "postgres"})[1]["effective"] == "at resume"
    sender = in_thread(service.send, "killed@tempmail.test", message("held when killed"))
    deadline = time.monotonic() + 10
    while service.get("/control/status")[1]["pause"]["held_writes"] < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    service.kill()
    sender[0].join(timeout=30)
    assert "error" in sender[1]  # the connection dropped: no 250 for a message not stored
    assert sqlite_rows(workdir) == [] and pg_rows(service.dsn) == []
    service.start()
    assert service.get("/health")[1]["mode"] == "sqlite"
    assert service.send("killed@tempmail.test", message("held when killed"))[0] == 250  # the client's retry
    assert [r[3] for r in sqlite_rows(workdir)] == ["held when killed"]
    assert service.stop() == 0


def test_sigterm_drains_a_write_in_flight(service_factory, workdir):
    service = service_factory("sqlite").start()
    locker = sqlite3.connect(workdir / "emails.db", isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")  # the store's write waits on busy_timeout
    sender = in_thread(service.send, "drain@tempmail.test", message("in flight at SIGTERM"))
    deadline = time.monotonic() + 10
    while service.get("/control/status")[1]["in_flight"] < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert service.get("/control/status")[1]["in_flight"] == 1
    service.proc.send_signal(15)
    time.sleep(0.5)
    assert service.proc.poll() is None  # still draining
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", service.smtp_port), timeout=2).close()  # not accepting
    locker.execute("ROLLBACK")
    locker.close()
    assert service.proc.wait(timeout=30) == 0
    sender[0].join(timeout=30)
    assert sender[1]["value"][0] == 250
    assert [r[3] for r in sqlite_rows(workdir)] == ["in flight at SIGTERM"]
    assert "all writes drained" in service.log_text


def test_control_calls_need_the_token_when_one_is_set(service_factory):
    secret = "control-secret-" + "x" * 20
    service = service_factory("sqlite", env={"MAILMIG_CONTROL_TOKEN": secret}).start()
    assert service.get("/control/status")[0] == 401
    assert service.get("/control/status", token="wrong")[0] == 401
    assert service.get("/control/status", token=secret)[0] == 200
    assert service.stop() == 0
    assert secret not in service.log_text


def test_the_control_client_and_command(service_factory):
    import subprocess

    from mailmig.service.client import ControlClient, ControlRefused
    from tests.func.service_process import MAILMIG

    service = service_factory("sqlite").start()
    client = ControlClient(service.base)
    pause = client.pause(limit_seconds=10)
    assert client.status()["pause"]["pause_id"] == pause["pause_id"]
    report = client.resume(pause["pause_id"])
    assert report["resumed_by"] == "control" and report["held_writes"] == 0 and report["write_pause_seconds"] == 0
    with pytest.raises(ControlRefused) as refused:
        client.resume(pause["pause_id"])
    assert refused.value.status == 409 and refused.value.payload["last_pause"] == report
    done = subprocess.run(MAILMIG + ["control", "status"], env=service.env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["last_pause"]["pause_id"] == pause["pause_id"]
    assert service.stop() == 0
