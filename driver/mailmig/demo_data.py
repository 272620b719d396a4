"""`mailmig demo-data`: a legacy dataset shaped like the running system's files.

Writes DIR/emails.db and DIR/auth.db with exactly the legacy DDL (config/legacy/*.sql,
embedded below), 90 days of normal mail ending at `end`, accounts and sessions, plus a
catalogue of hostile rows at fixed keys (DIR/catalogue.json, docs/hostile-rows.md) whose
expected outcome follows the conversion rules of docs/contracts.md.

Same seed + same end = the same rows. Speed comes from slicing one pre-built text corpus
instead of generating words per row, big executemany batches in one transaction with
journal_mode=OFF while building, and auth.db built by a second process in parallel.
"""

from __future__ import annotations

import base64
import bisect
import concurrent.futures
import itertools
import json
import multiprocessing
import os
import random
import sqlite3
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

from mailmig.sqlite_source import SqliteText, column_list, quote_identifier, source_key

# --- the legacy DDL: config/legacy/*.sql, a verbatim copy of ../shared/legacy -------------

LEGACY_DDL_DIR = Path(__file__).resolve().parents[2] / "config" / "legacy"
EMAILS_DDL = (LEGACY_DDL_DIR / "emails.sql").read_text()
AUTH_DDL = (LEGACY_DDL_DIR / "auth.sql").read_text()

# A table the mapping does not name: real files hold such tables and a load must ignore them.
EXTRA_TABLE_DDL = "CREATE TABLE app_settings (key TEXT PRIMARY KEY, value TEXT)"

EMAIL_COLUMNS = (
    "id", "message_id", "from_address", "to_address", "subject", "body", "html", "headers",
    "raw_email", "size", "starred", "is_read", "spam_score", "created_at",
)
ACCOUNT_COLUMNS = ("id", "email", "password_hash", "token", "created_at", "expires_at", "last_login_at", "is_active")
SESSION_COLUMNS = ("id", "account_id", "created_at", "expires_at", "ip", "user_agent")

DAYS = 90
BATCH_ROWS = 4000
HOSTILE_ID_BASE = 9_000_000
ID_BEYOND_INT32 = 3_000_000_000
ORPHAN_ACCOUNT_ID = 8_999_999  # between the normal and the hostile ranges: never an account

WORDS = """
account access action address advice agent alert amount answer apple april archive
arrive article august autumn backup balance bank basket beach berry billing birthday
blue board bonus book border bottle branch bright bring budget build button cabin
calendar camera campaign candle canyon capital card career cargo carry castle cedar
center chance change channel charge check cherry choice circle city claim clean clear
client cloud coast code coffee collect comfort common confirm contact copper corner
cotton counter country coupon course cover credit crystal cycle daily dance dark data
delivery demo desert design detail device digital direct discount dollar domain double
draft dream early earth easy echo eight elegant email energy engine enjoy entry event
exact expert express falcon fancy feature field final finance flash flight flower
forest form forward frame fresh friday frost future galaxy garden gentle giant global
golden grand green group guide harbor harvest health hello helper hidden history
holiday honest hotel hunter idea image impact income index inside invoice island
jacket jungle junior kernel kitchen ladder lake laser latest lemon letter level light
limit linear little local lucky magic mail maple market marble matter meadow member
memory message metal middle minute mobile modern moment monday morning mountain native
nature network night noble notice number ocean office online orange order origin
output owner package page palace paper parcel party payment peace pepper perfect
period phone pilot planet plaza pocket point portal power prime private profile
promo proud public purple quick quiet radio random rapid reader ready receipt record
refund region reply report rescue result review river robot rocket royal safety
sample saturday screen season secret secure select series server service shadow
share signal silver simple single sister smart social solar sound spark special
spring square stable start status steady stone storm story stream street studio
summer sunday super support survey switch system table talent target team thunder
ticket tiger timber today token total tower track trade travel trust tuesday update
urban valley value vector velvet verify victory village violet vision visit voice
wallet water wave weekly welcome window winter wonder world yellow young zebra
""".split()

SYLLABLES = "ka lo mi ne ru sa te vi do fa ge ha ji ko lu ma no pe qui ra si to ul ve wa xo ya ze an el in or un".split()

SENDER_DOMAINS = [
    "example.com", "mailer.example.org", "notify.shop.test", "news.paper.test", "accounts.bigcloud.test",
    "bank.example.net", "travel-deals.test", "social.example.io", "github.test", "billing.saas.test",
    "post.de.test", "correo.es.test", "laposte.fr.test", "mail.jp.test", "qq.cn.test", "yandex.ru.test",
]
SENDER_LOCALS = ["noreply", "no-reply", "notifications", "support", "info", "hello", "team", "billing", "security", "news"]

SUBJECTS_ASCII = [
    "Your verification code is {n}", "Welcome to {w}!", "Reset your password", "Invoice #{n} from {w}",
    "Your order {n} has shipped", "Confirm your email address", "Security alert: new sign-in",
    "Weekly digest: {w} and {w2}", "Re: {w} {w2}", "Fwd: {w} meeting notes", "{w} newsletter #{n}",
    "Your receipt from {w}", "Action required: verify your account", "Login code: {n}",
]
SUBJECTS_NON_ASCII = [
    "Réservation confirmée n° {n}", "Ärger mit Ihrer Bestellung {n}?", "Ihre Rechnung über {n},99 €",
    "您的验证码是 {n}", "Ваш код подтверждения: {n}", "確認コード {n} をお送りします", "Código de verificación: {n}",
    "🎉 Welcome aboard, {w}!", "Ğüzel bir gün {n} ✨", "Crème brûlée recipe #{n}", "인증 코드 {n}",
]
GREETINGS_NON_ASCII = ["Bonjour Zoë,", "Hallo Jürgen,", "Hola Begoña,", "こんにちは,", "Привет,", "你好,", "Olá João,"]

USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/120.0 Mobile Safari/537.36",
    "curl/8.5.0", "python-requests/2.31.0", "okhttp/4.12.0", "PostmanRuntime/7.36.0",
]
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class RawText(bytes):
    """Bytes to store with storage class TEXT as they are (invalid UTF-8, NUL): CAST(? AS TEXT)."""

    __slots__ = ()


# --- shared pieces -------------------------------------------------------------------------


def _rng(seed: int, stream: str) -> random.Random:
    # str seeds are hashed with sha512: stable across runs and Python processes
    return random.Random(f"mailmig-demo/{seed}/{stream}")


def _window(end: date) -> tuple[int, int]:
    """[start, stop) epoch seconds: the DAYS calendar days that end with `end` (UTC)."""
    stop = datetime(end.year, end.month, end.day, tzinfo=timezone.utc) + timedelta(days=1)
    return int((stop - timedelta(days=DAYS)).timestamp()), int(stop.timestamp())


def _ts(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch))


def _rfc2822(epoch: int) -> str:
    t = time.gmtime(epoch)
    return (f"{WEEKDAYS[t.tm_wday]}, {t.tm_mday:02d} {MONTHS[t.tm_mon]} {t.tm_year} "
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000")


def _ids_with_gaps(rng: random.Random, n: int, start: int = 1) -> list[int]:
    """n increasing ids from `start`, about 3% followed by a gap (deleted rows)."""
    ids, next_id = [], start
    for _ in range(n):
        ids.append(next_id)
        next_id += 1 + (rng.randint(1, 5) if rng.random() < 0.03 else 0)
    return ids


def account_addresses(seed: int, n: int) -> list[tuple[int, str]]:
    """The (id, email) of the n normal accounts; both generator processes derive them."""
    rng = _rng(seed, "account-addresses")
    ids = _ids_with_gaps(rng, n)
    seen: set[str] = set()
    out = []
    words = WORDS
    for account_id in ids:
        while True:
            email = f"{rng.choice(words)}.{rng.choice(words)}{rng.randint(1000, 9999)}@tempmail.test"
            if email not in seen:  # generated addresses are lower case: NOCASE-unique too
                break
        seen.add(email)
        out.append((account_id, email))
    return out


def _vocabulary(rng: random.Random) -> list[str]:
    made = {"".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))) for _ in range(2600)}
    vocab = sorted(made - set(WORDS))
    rng.shuffle(vocab)
    common = ["the", "and", "to", "of", "a", "in", "is", "for", "you", "your", "we", "on", "with", "this", "it"]
    return common + WORDS + vocab


def build_corpus(seed: int, chars: int = 6_000_000) -> str:
    """ASCII prose of `chars` characters (Zipf-distributed words, sentences, paragraphs)."""
    rng = _rng(seed, "corpus")
    vocab = _vocabulary(rng)
    weights = list(itertools.accumulate(1.0 / (rank + 1) ** 0.9 for rank in range(len(vocab))))
    words = rng.choices(vocab, cum_weights=weights, k=chars // 6 + 1000)
    paragraphs, pos, size = [], 0, 0
    while size < chars:
        sentences = []
        for _ in range(rng.randint(2, 6)):
            k = rng.randint(5, 18)
            chunk = words[pos:pos + k] if pos + k <= len(words) else rng.choices(vocab, k=k)
            pos += k
            sentence = " ".join(chunk)
            sentences.append(sentence[:1].upper() + sentence[1:] + rng.choice(".....?!"))
        paragraph = " ".join(sentences)
        paragraphs.append(paragraph)
        size += len(paragraph) + 2
    return "\n\n".join(paragraphs)


def _slice(corpus: str, rng: random.Random, length: int) -> str:
    start = corpus.find(" ", rng.randrange(len(corpus) - length - 100)) + 1
    stop = corpus.rfind(" ", start, start + length)
    return corpus[start:stop]


# --- emails --------------------------------------------------------------------------------


class EmailMaker:
    """Builds one email row (a dict of columns) at a time from the corpus."""

    def __init__(self, corpus: str, rng: random.Random, addresses: list[str], known: set[str]):
        self.corpus = corpus
        self.rng = rng
        self.addresses = addresses
        self.known = known

    def unknown_address(self) -> str:
        rng = self.rng
        while True:
            email = f"{rng.choice(WORDS)}.{rng.choice(WORDS)}{rng.randint(10000, 99999)}@tempmail.test"
            if email not in self.known:
                return email

    def subject(self) -> tuple[str, bool]:
        rng = self.rng
        n, w, w2 = rng.randint(100000, 999999), rng.choice(WORDS).capitalize(), rng.choice(WORDS)
        if rng.random() < 0.1:
            return rng.choice(SUBJECTS_NON_ASCII).format(n=n, w=w, w2=w2), True
        return rng.choice(SUBJECTS_ASCII).format(n=n, w=w, w2=w2), False

    def row(self, email_id: int, epoch: int) -> dict[str, Any]:
        rng = self.rng
        domain = rng.choice(SENDER_DOMAINS)
        if rng.random() < 0.6:
            from_address = f"{rng.choice(SENDER_LOCALS)}@{domain}"
        else:
            from_address = f"{rng.choice(WORDS)}.{rng.choice(WORDS)}@{domain}"
        if rng.random() < 0.95 and self.addresses:
            to_address = rng.choice(self.addresses)
        else:
            to_address = self.unknown_address()
        subject, non_ascii = self.subject()
        body = _slice(self.corpus, rng, rng.randint(1000, 2700))
        if non_ascii:
            body = rng.choice(GREETINGS_NON_ASCII) + "\n\n" + body
        body += "\n\n-- \nThe " + domain + " team"
        html = None
        if rng.random() < 0.5:
            html = ('<html><head><meta charset="utf-8"></head><body>\n<p>'
                    + body.replace("\n\n", "</p>\n<p>") + "</p>\n</body></html>")
        message_id = f"<{email_id:x}.{rng.getrandbits(48):012x}@{domain}>"
        date_header = _rfc2822(epoch)
        subject_header = subject if not non_ascii else "=?utf-8?b?" + base64.b64encode(subject.encode()).decode() + "?="
        received = (f"from mail.{domain} (mail.{domain} [{rng.randint(11, 223)}.{rng.randint(0, 255)}."
                    f"{rng.randint(0, 255)}.{rng.randint(1, 254)}]) by mx.tempmail.test with ESMTPS id "
                    f"{rng.getrandbits(40):010X}; {date_header}")
        # the JSON the app writes (json.dumps of the parsed headers), assembled directly: every
        # value but the subject is ASCII without quotes or backslashes
        headers = (f'{{"Received": "{received}", "Message-ID": "{message_id}", "Date": "{date_header}", '
                   f'"From": "{from_address}", "To": "{to_address}", "Subject": '
                   + json.dumps(subject, ensure_ascii=False) + ', "MIME-Version": "1.0", "Content-Type": ')
        head = (f"Received: {received}\nMessage-ID: {message_id}\nDate: {date_header}\nFrom: {from_address}\n"
                f"To: {to_address}\nSubject: {subject_header}\nMIME-Version: 1.0\n")
        if html is None:
            headers += '"text/plain; charset=utf-8"}'
            raw = head + "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n" + body + "\n"
        else:
            boundary = f"=_b{email_id:x}"
            headers += f'"multipart/alternative; boundary=\\"{boundary}\\""}}'
            raw = (head + f'Content-Type: multipart/alternative; boundary="{boundary}"\n\n--{boundary}\n'
                   "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n" + body
                   + f"\n--{boundary}\nContent-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
                   + html + f"\n--{boundary}--\n")
        size = len(raw) if raw.isascii() else len(raw.encode())
        roll = rng.random()
        if roll < 0.99:
            created_at = _ts(epoch)
        elif roll < 0.9933:  # the forms older app versions wrote
            created_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
        elif roll < 0.9966:
            created_at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{rng.randint(0, 999):03d}Z"
        else:
            created_at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch + 7200)) + "+02:00"
        return {
            "id": email_id, "message_id": message_id, "from_address": from_address, "to_address": to_address,
            "subject": subject, "body": body, "html": html,
            "headers": headers, "raw_email": raw, "size": size,
            "starred": 1 if rng.random() < 0.05 else 0, "is_read": 1 if rng.random() < 0.4 else 0,
            "spam_score": round(min(10.0, rng.expovariate(0.8)), 2), "created_at": created_at,
        }


def _insert_sql(table: str, columns: tuple[str, ...]) -> str:
    return f'INSERT INTO {quote_identifier(table)} ({column_list(columns)}) VALUES ({", ".join("?" * len(columns))})'


def _insert_one(conn: sqlite3.Connection, table: str, row: dict[str, Any]) -> int:
    """One row whose RawText values are stored as TEXT with their exact bytes; its rowid."""
    columns = list(row)
    marks = ["CAST(? AS TEXT)" if isinstance(row[c], RawText) else "?" for c in columns]
    values = [bytes(v) if isinstance(v, RawText) else v for v in row.values()]
    return conn.execute(
        f'INSERT INTO {quote_identifier(table)} ({column_list(columns)}) VALUES ({", ".join(marks)})',
        values).lastrowid


def _as_read(value):
    """A value as SQLite gives it back through mailmig's readers (TEXT as SqliteText)."""
    if isinstance(value, (RawText, str)):
        return SqliteText(value if isinstance(value, RawText) else value.encode("utf-8"))
    return value


def _split_ddl(ddl: str) -> tuple[list[str], list[str]]:
    """(tables, indexes): the statements of a DDL script, indexes kept for after the bulk load."""
    statements, buf = [], ""
    for line in ddl.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            # the comment lines before a statement stay in the file, not in the statement
            lines = buf.strip().splitlines()
            while lines and lines[0].lstrip().startswith("--"):
                lines.pop(0)
            statements.append("\n".join(lines).strip())
            buf = ""
    tables = [s for s in statements if not s.upper().startswith("CREATE INDEX")]
    indexes = [s for s in statements if s.upper().startswith("CREATE INDEX")]
    return tables, indexes


def _open_build(path: Path) -> sqlite3.Connection:
    if path.exists():
        path.unlink()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-400000")  # 400 MB: the unique index stays in memory
    conn.execute("PRAGMA temp_store=MEMORY")
    return conn


def _finish(conn: sqlite3.Connection) -> None:
    """Leave the file as the app does: WAL mode, nothing left in the -wal to checkpoint."""
    conn.execute("PRAGMA synchronous=NORMAL")
    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if mode != "wal":
        raise RuntimeError(f"journal_mode is {mode}, not wal")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def _email_epochs(rng: random.Random, n: int, end: date) -> list[int]:
    start, stop = _window(end)
    return sorted(rng.randrange(start, stop) for _ in range(n))


FTS_SHADOW_TABLES = ("emails_fts_data", "emails_fts_idx", "emails_fts_docsize", "emails_fts_config")


def _fts_worker(path: str, fts_statement: str, pipe) -> None:
    """Build the emails_fts index in a file of its own from (id, subject, body) batches.

    Runs in a second process while the first writes the rows; an external-content FTS5
    table takes direct inserts without reading its content table.
    """
    try:
        cpu = time.process_time()
        conn = _open_build(Path(path))
        conn.execute("BEGIN")
        conn.execute(fts_statement)
        rows = 0
        while (batch := pipe.recv()) is not None:
            plain = [r for r in batch if not any(isinstance(v, RawText) for v in r)]
            conn.executemany("INSERT INTO emails_fts (rowid, subject, body) VALUES (?, ?, ?)", plain)
            for r in batch:
                if any(isinstance(v, RawText) for v in r):
                    _insert_one(conn, "emails_fts", dict(zip(("rowid", "subject", "body"), r)))
            rows += len(batch)
        conn.execute("COMMIT")
        conn.close()
        pipe.send(("ok", {"rows": rows, "cpu_seconds": round(time.process_time() - cpu, 2)}))
    except BaseException as exc:  # reported to the parent, which raises it
        pipe.send(("error", f"{type(exc).__name__}: {exc}"))


class _FtsBuilder:
    """The FTS index built beside the rows by a second process, copied in at the end."""

    def __init__(self, path: Path, fts_statement: str):
        self.path = path
        ctx = multiprocessing.get_context("spawn")
        self.pipe, child = ctx.Pipe()
        self.proc = ctx.Process(target=_fts_worker, args=(str(path), fts_statement, child), daemon=True)
        self.proc.start()
        child.close()

    def send(self, rows: list[tuple]) -> None:
        self.pipe.send(rows)

    def finish(self) -> dict:
        self.pipe.send(None)
        status, detail = self.pipe.recv()
        self.proc.join()
        if status != "ok":
            raise RuntimeError(f"building emails_fts failed: {detail}")
        return detail

    def copy_into(self, conn: sqlite3.Connection) -> None:
        """Replace the (empty) index of `conn`'s emails_fts with the one built aside."""
        conn.execute("ATTACH DATABASE ? AS fts_build", (str(self.path),))
        conn.execute("BEGIN")
        for table in FTS_SHADOW_TABLES:
            conn.execute(f"DELETE FROM main.{quote_identifier(table)}")
            conn.execute(f"INSERT INTO main.{quote_identifier(table)} SELECT * FROM fts_build.{quote_identifier(table)}")
        conn.execute("COMMIT")
        conn.execute("DETACH DATABASE fts_build")

    def abort(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()
        self.pipe.close()
        if self.path.exists():
            self.path.unlink()


def build_emails_db(path: Path, emails: int, accounts: int, seed: int, end: date,
                    fts: bool = True, progress: Callable | None = None) -> dict:
    """Write the emails database at `path`: normal rows, the hostile ones, indexes, the FTS index."""
    t0, cpu0 = time.monotonic(), time.process_time()
    corpus = build_corpus(seed)
    addresses = [email for _, email in account_addresses(seed, accounts)]
    rng = _rng(seed, "emails")
    maker = EmailMaker(corpus, rng, addresses, set(addresses))
    epochs = _email_epochs(rng, emails, end)
    ids = _ids_with_gaps(rng, emails)
    hostile_base = HOSTILE_ID_BASE
    while ids and hostile_base <= ids[-1]:
        hostile_base *= 10
    tables, indexes = _split_ddl(EMAILS_DDL)
    fts_statement = next(s for s in tables if s.upper().startswith("CREATE VIRTUAL TABLE"))
    fts_builder = _FtsBuilder(path.with_name(path.name + "-fts"), fts_statement) if fts else None
    try:
        conn = _open_build(path)
        conn.execute("BEGIN")
        for statement in tables:
            conn.execute(statement)
        insert = _insert_sql("emails", EMAIL_COLUMNS)
        done = 0
        for lo in range(0, emails, BATCH_ROWS):
            batch = [tuple(maker.row(ids[i], epochs[i]).values()) for i in range(lo, min(lo + BATCH_ROWS, emails))]
            if fts_builder:
                fts_builder.send([(r[0], r[4], r[5]) for r in batch])
            conn.executemany(insert, batch)
            done += len(batch)
            if progress and (done % (BATCH_ROWS * 10) == 0 or done == emails):
                progress("emails", done, emails)
        hostile_maker = EmailMaker(corpus, _rng(seed, "hostile-emails"), addresses[:100], set(addresses))
        catalogue = hostile_emails(hostile_maker, hostile_base, end)
        for entry, row in catalogue:
            entry["rowid"] = _insert_one(conn, "emails", row)
        if fts_builder:
            fts_builder.send([(r["id"], r["subject"], r["body"]) for _, r in catalogue])
        for statement in indexes:
            conn.execute(statement)
        conn.execute(EXTRA_TABLE_DDL)
        conn.executemany("INSERT INTO app_settings (key, value) VALUES (?, ?)", [
            ("schema_version", "7"), ("smtp_hostname", "mx.tempmail.test"), ("retention_days", str(DAYS)),
            ("fts_enabled", "1"), ("data_generated_for", end.isoformat()),
        ])
        conn.execute("COMMIT")
        t_rows, cpu_rows = time.monotonic(), time.process_time() - cpu0
        fts_info = {}
        if fts_builder:
            if progress:
                progress("emails_fts", 0, 1)
            fts_info = fts_builder.finish()
            fts_builder.copy_into(conn)
            if progress:
                progress("emails_fts", 1, 1)
        t_fts = time.monotonic()
        entries = _with_typeof(conn, "emails", [e for e, _ in catalogue])
        _finish(conn)
    finally:
        if fts_builder:
            fts_builder.abort()
    return {
        "normal": emails, "hostile": len(catalogue), "rows": emails + len(catalogue),
        "normal_id_range": [ids[0], ids[-1]] if ids else None, "hostile_id_base": hostile_base,
        "fts_populated": fts, "seconds_rows": round(t_rows - t0, 2), "seconds_fts_wait": round(t_fts - t_rows, 2),
        "cpu_seconds_rows": round(cpu_rows, 2), "cpu_seconds_fts": fts_info.get("cpu_seconds"),
        "catalogue": entries,
    }


def _with_typeof(conn: sqlite3.Connection, table: str, entries: list[dict]) -> list[dict]:
    """Each catalogue entry with the storage class its column holds in the written file
    (found by rowid: a key may be NULL or a BLOB)."""
    out = []
    for entry in entries:
        row = conn.execute(
            f"SELECT typeof({quote_identifier(entry['column'])}) FROM {quote_identifier(table)} WHERE rowid = ?",
            (entry["rowid"],),
        ).fetchone()
        if row is None:
            raise RuntimeError(f"catalogued row {table} {entry['key']} was not written")
        out.append({**entry, "typeof": row[0]})
    return out


# --- the hostile catalogue -----------------------------------------------------------------


def _entry(kind: str, table: str, key, column: str, description: str, expected: str) -> dict:
    return {"kind": kind, "table": table, "key": str(key), "column": column,
            "description": description, "expected": expected}


def hostile_emails(maker: EmailMaker, base: int, end: date) -> list[tuple[dict, dict]]:
    """(catalogue entry, row) for each hostile email; every other column of a row is normal."""
    start, stop = _window(end)
    noon = stop - 12 * 3600  # midday of `end`
    out: list[tuple[dict, dict]] = []
    next_id = itertools.count(base + 1)

    def add(kind, column, value, description, expected, key=None, **other):
        email_id = key if key is not None else next(next_id)
        row = maker.row(email_id, noon)
        row["created_at"] = _ts(noon)
        row[column] = value
        row.update(other)
        out.append((_entry(kind, "emails", email_id, column, description, expected), row))

    text = "Dear customer,\n\nYour parcel is waiting"
    add("body_invalid_utf8", "body", RawText(text.encode() + b" \xff\xfe at the \xc3\x28 depot \xed\xa0\x80."),
        "body is TEXT holding bytes that are not UTF-8 (0xff 0xfe, a cut 2-byte sequence, a UTF-16 surrogate)",
        "repaired:text_bytes_replaced")
    add("subject_invalid_utf8", "subject", RawText(b"Caf\xe9 ouvert \xe0 Paris"),
        "subject is TEXT in Latin-1 (0xe9, 0xe0), not UTF-8", "repaired:text_bytes_replaced")
    add("body_nul", "body", text + "\x00 and after the NUL the text goes on.",
        "body is TEXT with a NUL byte inside (pgloader cuts the value there)", "repaired:text_bytes_replaced")
    add("raw_email_nul", "raw_email", "From: a@example.com\nSubject: nul\n\nbefore\x00after\n",
        "raw_email is TEXT with a NUL byte inside", "repaired:text_bytes_replaced")
    add("body_blob", "body", b"a BLOB in a TEXT column \x00\x01\x02\xff",
        "body has storage class BLOB (bytes incl. NUL and 0xff)", "repaired:blob_as_text")
    add("size_text", "size", "big", "size (INTEGER) holds the text 'big' (pgloader: whole table lost)",
        "repaired:number_unreadable_null")
    add("size_real", "size", 12.5, "size (INTEGER) holds the real 12.5", "repaired:number_unreadable_null")
    add("size_numeric_text", "size", "4096",
        "size written as the text '4096': INTEGER affinity stores integer 4096", "loaded")
    add("spam_score_text", "spam_score", "high", "spam_score (REAL) holds the text 'high'",
        "repaired:number_unreadable_null")
    add("spam_score_numeric_text", "spam_score", "0.75",
        "spam_score written as the text '0.75': REAL affinity stores it as real 0.75 (numeric text "
        "cannot stay text in this column)", "loaded")
    add("spam_score_comma_decimal", "spam_score", "0,75",
        "spam_score holds the text '0,75' (decimal comma: not a number)", "repaired:number_unreadable_null")
    add("spam_score_infinity", "spam_score", float("inf"), "spam_score is the real +Infinity (1e999)", "loaded")
    add("starred_text_true", "starred", "true", "starred holds the text 'true'", "loaded")
    add("starred_text_unreadable", "starred", "maybe", "starred holds the text 'maybe'",
        "repaired:flag_unreadable_null")
    add("is_read_two", "is_read", 2, "is_read holds the integer 2", "repaired:flag_nonzero_true")
    add("is_read_text_no", "is_read", "no", "is_read holds the text 'no'", "loaded")
    day = time.gmtime(noon)
    iso_day = f"{day.tm_year:04d}-{day.tm_mon:02d}-{day.tm_mday:02d}"
    for kind, value, description in [
        ("created_at_plain", _ts(noon), "'YYYY-MM-DD HH:MM:SS' (the app's own form)"),
        ("created_at_iso_t_z", iso_day + "T12:00:00Z", "ISO 8601 with T and Z"),
        ("created_at_iso_millis_z", iso_day + "T12:00:00.123Z", "ISO 8601 with milliseconds and Z"),
        ("created_at_iso_micros", iso_day + " 12:00:00.123456", "six fraction digits, no zone"),
        ("created_at_offset_colon", iso_day + "T14:00:00+02:00", "ISO 8601 with a +02:00 offset"),
        ("created_at_offset_compact", iso_day + "T14:00:00+0200", "ISO 8601 with a +0200 offset"),
        ("created_at_epoch_seconds", noon, "epoch seconds, an integer"),
        ("created_at_epoch_millis", noon * 1000 + 123, "epoch milliseconds, an integer"),
        ("created_at_epoch_seconds_text", str(noon),
         "epoch seconds written as text digits: NUMERIC affinity stores an integer"),
        ("created_at_epoch_real", noon + 0.5, "epoch seconds, a real"),
        ("created_at_date_only", iso_day, "a date only, 'YYYY-MM-DD' (midnight UTC)"),
        ("created_at_far_past", "1999-12-31 23:59:59", "far in the past, within 1970..2100"),
        ("created_at_far_future", "2030-06-01 12:00:00", "far in the future, within 1970..2100"),
    ]:
        add(kind, "created_at", value, "created_at: " + description, "loaded")
    add("created_at_null", "created_at", None, "created_at is NULL: no month to live in", "rejected:23502")
    add("created_at_word", "created_at", "yesterday", "created_at is the text 'yesterday'", "rejected:22007")
    add("created_at_zero", "created_at", "0000-00-00 00:00:00", "created_at is the MySQL zero date",
        "rejected:22007")
    add("created_at_before_1970", "created_at", "1965-03-01 00:00:00", "created_at before 1970-01-01",
        "rejected:22007")
    add("created_at_after_2100", "created_at", "2150-01-01 00:00:00", "created_at after 2100-01-01",
        "rejected:22007")
    add("headers_invalid_json", "headers", '{"From": "a@example.com", "Subject": unquoted, ',
        "headers is text that is not JSON (cut off, unquoted value)", "repaired:json_invalid_null")
    add("headers_duplicate_keys", "headers", '{"Subject": "first", "From": "a@example.com", "Subject": "second"}',
        "headers is a JSON object with a duplicate key (jsonb keeps the last)", "loaded")
    big = (maker.corpus * (1 + 3_000_000 // len(maker.corpus)))[:3_000_000]
    big_raw = "From: big@example.com\nSubject: a 3 MB body\nContent-Type: text/plain\n\n" + big + "\n"
    add("body_3mb", "body", big, "body of 3,000,000 characters (raw_email holds it too)", "loaded",
        html=None, raw_email=big_raw, size=len(big_raw))
    add("id_beyond_int32", "id", ID_BEYOND_INT32, "id 3000000000, beyond 2^31 (needs bigint)", "loaded",
        key=ID_BEYOND_INT32)
    case_id = f"<Case.Sensitive.{base:x}@mx.example.com>"
    add("message_id_case_upper", "message_id", case_id,
        "message_id that differs from the next row's only in letter case", "loaded")
    add("message_id_case_lower", "message_id", case_id.lower(),
        "message_id that differs from the previous row's only in letter case (Message-IDs are "
        "case-sensitive)", "loaded")
    rng = maker.rng
    long_local = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(10_240))
    add("to_address_10kb", "to_address", long_local + "@tempmail.test",
        "to_address of 10 KB of random letters: too big for a btree index entry (2704 bytes) even compressed",
        "rejected:54000")
    add("subject_emoji_4byte", "subject", "Your parcel 📦 is here 🚚💨 𝄞",
        "subject with 4-byte UTF-8 characters (emoji, U+1D11E)", "loaded")
    hostile_emails_on_the_edges(add)
    return out


def hostile_emails_on_the_edges(add) -> None:
    """Values shaped like the accepted forms that name no instant, limits of the epoch and
    offset rules, numbers beyond int64, NaN and -Infinity, whitespace-only text in every
    typed column, the empty BLOB (issue 10: no value may stop the run)."""
    reject = "rejected:22007"
    for kind, value, description, expected in [
        # calendar-impossible dates and times, in every text form the rules accept
        ("created_at_feb_30", "2026-02-30 12:00:00", "'2026-02-30 12:00:00': the app's form, no such day", reject),
        ("created_at_apr_31_t_z", "2026-04-31T12:00:00Z", "'2026-04-31T12:00:00Z': T and Z, no such day", reject),
        ("created_at_feb_29_non_leap", "2025-02-29T12:00:00", "Feb 29 of 2025, not a leap year", reject),
        ("created_at_feb_29_leap", "2024-02-29 12:00:00", "Feb 29 of 2024, a leap year (the control)", "loaded"),
        ("created_at_jun_31_fraction", "2026-06-31 12:00:00.123456", "June 31 with six fraction digits", reject),
        ("created_at_sep_31_offset", "2026-09-31T14:00:00+02:00", "September 31 with an offset", reject),
        ("created_at_nov_31_compact_offset", "2026-11-31T14:00:00+0200", "November 31 with a compact offset", reject),
        ("created_at_feb_30_date_only", "2026-02-30", "'2026-02-30', a date only", reject),
        ("created_at_month_13", "2026-13-01 12:00:00", "month 13", reject),
        ("created_at_day_00", "2026-10-00 12:00:00", "day 00", reject),
        ("created_at_hour_24", "2026-10-31 24:00:00", "hour 24 (ISO's end of day: not accepted)", reject),
        ("created_at_leap_second", "2016-12-31 23:59:60", "a leap second, :60", reject),
        ("created_at_minute_60", "2026-10-31 12:60:00", "minute 60", reject),
        ("created_at_leading_space", " 2026-10-31 12:00:00", "the app's form after a space", reject),
        # offsets: PostgreSQL's limit +-15:59 is the rule's
        ("created_at_offset_max", "2026-10-31T12:00:00+15:59", "offset +15:59, the largest accepted", "loaded"),
        ("created_at_offset_beyond", "2026-10-31T12:00:00+16:00", "offset +16:00, beyond +-15:59", reject),
        ("created_at_offset_beyond_negative", "2026-10-31T12:00:00-23:00", "offset -23:00", reject),
        ("created_at_offset_minutes_60", "2026-10-31T12:00:00+01:60", "offset minutes 60", reject),
        # epoch numbers at and beyond the accepted range [1970-01-01, 2100-01-01)
        ("created_at_epoch_zero", 0, "epoch 0: 1970-01-01T00:00:00Z, the first accepted instant", "loaded"),
        ("created_at_epoch_negative", -1, "epoch -1: before 1970", reject),
        ("created_at_epoch_last_second", 4102444799, "epoch 4102444799: 2099-12-31T23:59:59Z", "loaded"),
        ("created_at_epoch_2100", 4102444800, "epoch 4102444800: 2100-01-01, excluded", reject),
        ("created_at_epoch_seconds_beyond", 99_999_999_999, "epoch 99999999999 (< 1e11: seconds, year 5138)",
         reject),
        ("created_at_epoch_millis_last", 4102444799999, "epoch milliseconds of 2099-12-31T23:59:59.999Z", "loaded"),
        ("created_at_epoch_millis_2100", 4102444800000, "epoch milliseconds of 2100-01-01", reject),
        ("created_at_epoch_real_rounds_to_2100", 4102444799.9999995,
         "epoch real 4102444799.9999995: rounds to the microsecond 2100-01-01", reject),
        ("created_at_beyond_int64_real", 1e19, "the real 1e19, beyond int64", reject),
        ("created_at_beyond_int64_text", "99999999999999999999",
         "20 digits written as text: NUMERIC affinity stores the real 1e20", reject),
        ("created_at_nan_text", "NaN", "the text 'NaN'", reject),
        ("created_at_minus_infinity", float("-inf"), "the real -Infinity", reject),
        ("created_at_whitespace", "   ", "text of three spaces", reject),
        ("created_at_empty_blob", b"", "an empty BLOB", reject),
    ]:
        add(kind, "created_at", value, "created_at: " + description, expected)
    for kind, column, value, description, expected in [
        ("spam_score_nan_bound", "spam_score", float("nan"),
         "spam_score bound as NaN: SQLite stores NULL (a REAL column cannot hold NaN)", "loaded"),
        ("spam_score_nan_text", "spam_score", "NaN", "spam_score holds the text 'NaN'", "repaired:number_unreadable_null"),
        ("spam_score_minus_infinity", "spam_score", float("-inf"), "spam_score is the real -Infinity", "loaded"),
        ("spam_score_beyond_double_text", "spam_score", "1e400",
         "spam_score written as '1e400': REAL affinity stores +Infinity", "loaded"),
        ("size_beyond_int64_real", "size", 9.3e18, "size is the real 9.3e18, beyond int64",
         "repaired:number_unreadable_null"),
        ("size_beyond_int64_text", "size", "99999999999999999999",
         "size written as 20 digits: INTEGER affinity stores the real 1e20", "repaired:number_unreadable_null"),
        ("is_read_beyond_int64_real", "is_read", 1e20, "is_read is the real 1e20", "repaired:flag_unreadable_null"),
        ("size_whitespace", "size", "   ", "size is text of three spaces", "repaired:number_unreadable_null"),
        ("starred_whitespace", "starred", " ", "starred is text of one space", "repaired:flag_unreadable_null"),
        ("is_read_whitespace", "is_read", "\t\n", "is_read is a tab and a newline", "repaired:flag_unreadable_null"),
        ("spam_score_whitespace", "spam_score", "  ", "spam_score is text of two spaces",
         "repaired:number_unreadable_null"),
        ("headers_whitespace", "headers", "  \n", "headers is whitespace only (jsonb refuses it)",
         "repaired:json_invalid_null"),
        ("body_empty_blob", "body", b"", "body is an empty BLOB", "repaired:blob_as_text"),
        ("size_empty_blob", "size", b"", "size is an empty BLOB", "repaired:number_unreadable_null"),
        ("starred_empty_blob", "starred", b"", "starred is an empty BLOB", "repaired:flag_unreadable_null"),
        ("spam_score_empty_blob", "spam_score", b"", "spam_score is an empty BLOB", "repaired:number_unreadable_null"),
        ("headers_empty_blob", "headers", b"", "headers is an empty BLOB", "repaired:json_invalid_null"),
        ("message_id_blob", "message_id", b"<blob.message.id@mx.example.com>",
         "message_id is a BLOB of valid UTF-8", "repaired:blob_as_text"),
        ("headers_nested_1001", "headers", "[" * 1001 + "]" * 1001,
         "headers nests 1001 arrays: deeper than the 1000 levels the rule loads", "repaired:json_invalid_null"),
        ("headers_nested_1000", "headers", "[" * 1000 + "]" * 1000,
         "headers nests 1000 arrays, the deepest the rule loads", "loaded"),
    ]:
        add(kind, column, value, description, expected)


def hostile_accounts(rng: random.Random, end: date) -> list[tuple[dict, dict]]:
    start, stop = _window(end)
    created = stop - 86400
    out: list[tuple[dict, dict]] = []
    next_id = itertools.count(HOSTILE_ID_BASE + 1)

    def add(kind, column, value, description, expected, key=None, **other):
        account_id = key if key is not None else next(next_id)
        row = {
            "id": account_id, "email": f"hostile.{kind.replace('_', '.')}@tempmail.test",
            "password_hash": _bcrypt_like(rng), "token": rng.randbytes(32).hex(), "created_at": _ts(created),
            "expires_at": _ts(created + 30 * 86400), "last_login_at": None, "is_active": 1,
        }
        row[column] = value
        row.update(other)
        out.append((_entry(kind, "accounts", account_id, column, description, expected), row))

    add("email_nonascii_case_upper", "email", "Ärger.kunde@tempmail.test",
        "address that differs from the next one only in the case of a non-ASCII letter (Ä)", "loaded")
    add("email_nonascii_case_lower", "email", "ärger.kunde@tempmail.test",
        "address that differs from the previous one only in the case of a non-ASCII letter (ä); legal "
        "under SQLite's ASCII-only NOCASE", "loaded")
    add("created_at_garbage", "created_at", "garbage", "created_at is the text 'garbage'",
        "repaired:timestamp_unreadable_null")
    add("expires_at_iso_z", "expires_at", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created + 30 * 86400)),
        "expires_at in ISO 8601 with T and Z", "loaded")
    add("is_active_text_yes", "is_active", "yes", "is_active holds the text 'yes'", "loaded")
    add("is_active_two", "is_active", 2, "is_active holds the integer 2", "repaired:flag_nonzero_true")
    add("id_beyond_int32", "id", ID_BEYOND_INT32, "id 3000000000, beyond 2^31 (needs bigint)", "loaded",
        key=ID_BEYOND_INT32)
    add("token_only", "password_hash", None, "token-only inbox: password_hash NULL", "loaded")
    for kind, column, value, description, expected in [
        ("created_at_whitespace", "created_at", " ", "created_at is text of one space",
         "repaired:timestamp_unreadable_null"),
        ("expires_at_whitespace", "expires_at", "  ", "expires_at is text of two spaces",
         "repaired:timestamp_unreadable_null"),
        ("last_login_at_whitespace", "last_login_at", "\t", "last_login_at is a tab",
         "repaired:timestamp_unreadable_null"),
        ("is_active_whitespace", "is_active", " ", "is_active is text of one space", "repaired:flag_unreadable_null"),
        ("expires_at_feb_30", "expires_at", "2026-02-30T00:00:00Z", "expires_at on February 30",
         "repaired:timestamp_unreadable_null"),
        ("expires_at_empty_blob", "expires_at", b"", "expires_at is an empty BLOB", "repaired:timestamp_unreadable_null"),
        ("is_active_empty_blob", "is_active", b"", "is_active is an empty BLOB", "repaired:flag_unreadable_null"),
        ("email_empty_blob", "email", b"", "email is an empty BLOB", "repaired:blob_as_text"),
        ("token_blob", "token", b"blob-token-0001", "token is a BLOB", "repaired:blob_as_text"),
    ]:
        add(kind, column, value, description, expected)
    return out


def hostile_sessions(rng: random.Random, end: date, some_account: int) -> list[tuple[dict, dict]]:
    start, stop = _window(end)
    created = stop - 3600
    out: list[tuple[dict, dict]] = []

    def add(kind, column, value, description, expected, target=None, **other):
        session_id = "hostile-" + kind.replace("_", "-")
        row = {"id": session_id, "account_id": some_account, "created_at": _ts(created),
               "expires_at": _ts(created + 14 * 86400), "ip": "203.0.113.7", "user_agent": USER_AGENTS[0]}
        row[column] = value
        row.update(other)
        entry = _entry(kind, "sessions", session_id, column, description, expected)
        if target is not None:
            entry["target"] = target  # the id the row has in mail.sessions, when not its key
        out.append((entry, row))

    add("account_gone", "account_id", ORPHAN_ACCOUNT_ID,
        "account_id names no account (the app did not always set foreign_keys=ON)", "rejected:23503")
    add("account_id_beyond_int32", "account_id", ID_BEYOND_INT32,
        "session of the account with id 3000000000", "loaded")
    add("expires_at_epoch", "expires_at", created + 14 * 86400, "expires_at is epoch seconds, an integer", "loaded")
    add("created_at_unreadable", "created_at", "never", "created_at is the text 'never'",
        "repaired:timestamp_unreadable_null")
    add("user_agent_invalid_utf8", "user_agent", RawText(b"Mozilla/5.0 (\xff\xfeBroken\x80 Agent)"),
        "user_agent is TEXT holding bytes that are not UTF-8", "repaired:text_bytes_replaced")
    add("ip_ipv6", "ip", "2001:db8::7", "ip is an IPv6 address", "loaded")
    add("account_id_beyond_int64", "account_id", "9223372036854775808",
        "account_id written as 2^63: INTEGER affinity stores a real; no integer, repaired to NULL, and "
        "account_id may not be NULL", "rejected:23502")
    add("account_id_whitespace", "account_id", " ", "account_id is text of one space: NULL, which it may not be",
        "rejected:23502")
    add("created_at_whitespace", "created_at", "   ", "created_at is text of three spaces",
        "repaired:timestamp_unreadable_null")
    add("expires_at_whitespace", "expires_at", "\n", "expires_at is a newline", "repaired:timestamp_unreadable_null")
    add("expires_at_hour_24", "expires_at", "2026-10-31 24:00:00", "expires_at at hour 24",
        "repaired:timestamp_unreadable_null")
    return out


# --- auth ----------------------------------------------------------------------------------


def _bcrypt_like(rng: random.Random) -> str:
    """'$2b$12$' + 53 characters of bcrypt's alphabet: looks like a hash, is random."""
    salt_hash = base64.b64encode(rng.randbytes(40)).decode().translate(str.maketrans("+/", "./"))
    return "$2b$12$" + salt_hash[:53]


def build_auth_db(path: Path, accounts: int, seed: int, end: date, progress: Callable | None = None) -> dict:
    """Write the auth database at `path`: accounts, about one session per three accounts, hostile rows."""
    t0, cpu0 = time.monotonic(), time.process_time()
    start, stop = _window(end)
    rng = _rng(seed, "accounts")
    addresses = account_addresses(seed, accounts)
    created = sorted(rng.randrange(start, stop) for _ in range(accounts))
    tables, indexes = _split_ddl(AUTH_DDL)
    conn = _open_build(path)
    conn.execute("BEGIN")
    for statement in tables:
        conn.execute(statement)
    rows = []
    for (account_id, email), created_at in zip(addresses, created):
        kind = rng.random()
        password_hash = None if kind < 0.3 else _bcrypt_like(rng)
        token = rng.randbytes(32).hex() if kind < 0.8 else None
        expires = None if rng.random() < 0.1 else created_at + 30 * 86400
        last_login = None
        if rng.random() < 0.6:
            last_login = rng.randrange(created_at, max(created_at + 1, min(expires or stop, stop)))
        active = 1 if expires is None or expires > stop else (1 if rng.random() < 0.03 else 0)
        rows.append((account_id, email, password_hash, token, _ts(created_at),
                     _ts(expires) if expires else None, _ts(last_login) if last_login else None, active))
    conn.executemany(_insert_sql("accounts", ACCOUNT_COLUMNS), rows)
    account_rows = rows
    srng = _rng(seed, "sessions")
    sessions = accounts // 3
    rows = []
    for _ in range(sessions):
        pick = srng.randrange(len(account_rows))
        account = account_rows[pick]
        created_at = min(stop - 1, created[pick] + srng.randrange(0, 7 * 86400))
        if srng.random() < 0.9:
            ip = f"{srng.randint(11, 223)}.{srng.randint(0, 255)}.{srng.randint(0, 255)}.{srng.randint(1, 254)}"
        else:
            ip = f"2001:db8:{srng.getrandbits(16):x}::{srng.getrandbits(16):x}"
        rows.append((srng.randbytes(32).hex(), account[0], _ts(created_at), _ts(created_at + 14 * 86400), ip,
                     srng.choice(USER_AGENTS)))
    conn.executemany(_insert_sql("sessions", SESSION_COLUMNS), rows)
    hrng = _rng(seed, "hostile-auth")
    account_catalogue = hostile_accounts(hrng, end)
    for entry, row in account_catalogue:
        entry["rowid"] = _insert_one(conn, "accounts", row)
    session_catalogue = hostile_sessions(hrng, end, addresses[0][0] if addresses else ID_BEYOND_INT32)
    for entry, row in session_catalogue:
        entry["rowid"] = _insert_one(conn, "sessions", row)
        # the key's name (contracts: source keys): by itself when it is valid text, else
        # by its storage class (null:<rowid>, blob:<hex>, hex:<hex>, text:<text>)
        entry["key"] = source_key(_as_read(row["id"]), "text", entry["rowid"])
    for statement in indexes:
        conn.execute(statement)
    conn.execute("COMMIT")
    entries = (_with_typeof(conn, "accounts", [e for e, _ in account_catalogue])
               + _with_typeof(conn, "sessions", [e for e, _ in session_catalogue]))
    _finish(conn)
    if progress:
        progress("auth", accounts, accounts)
    return {
        "accounts": {"normal": accounts, "hostile": len(account_catalogue), "rows": accounts + len(account_catalogue)},
        "sessions": {"normal": sessions, "hostile": len(session_catalogue), "rows": sessions + len(session_catalogue)},
        "seconds": round(time.monotonic() - t0, 2), "cpu_seconds": round(time.process_time() - cpu0, 2),
        "catalogue": entries,
    }


# --- the whole dataset ---------------------------------------------------------------------


def _replace(tmp: Path, target: Path) -> None:
    """Put a finished database in place; a stale -wal/-shm of the old file must not meet the new one."""
    for suffix in ("-wal", "-shm", "-journal"):
        stale = target.with_name(target.name + suffix)
        if stale.exists():
            stale.unlink()
    os.replace(tmp, target)


def generate(out_dir: Path, emails: int, accounts: int, seed: int = 42, end: date | None = None,
             progress: Callable[[str, int, int], None] | None = None, fts: bool = True) -> dict:
    """Generate DIR/emails.db, DIR/auth.db and DIR/catalogue.json; return a summary.

    `emails` and `accounts` count the normal rows; the catalogued hostile rows come on top.
    auth.db and the FTS index are built by two `spawn`ed processes: a script that calls this
    must do so under `if __name__ == "__main__":` (multiprocessing re-imports the main module).
    """
    if emails < 0 or accounts < 0:
        raise ValueError("--emails and --accounts must be >= 0")
    end = end or datetime.now(timezone.utc).date()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    tag = f".tmp-{os.getpid()}"
    emails_tmp, auth_tmp = out_dir / f"emails.db{tag}", out_dir / f"auth.db{tag}"
    try:
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            auth_future = pool.submit(build_auth_db, auth_tmp, accounts, seed, end)
            emails_info = build_emails_db(emails_tmp, emails, accounts, seed, end, fts=fts, progress=progress)
            auth_info = auth_future.result()
        _replace(emails_tmp, out_dir / "emails.db")
        _replace(auth_tmp, out_dir / "auth.db")
    finally:
        for tmp in (emails_tmp, auth_tmp):
            if tmp.exists():
                tmp.unlink()
    catalogue = emails_info.pop("catalogue") + auth_info.pop("catalogue")
    catalogue_path = out_dir / "catalogue.json"
    tmp = catalogue_path.with_name(catalogue_path.name + tag)
    tmp.write_text(json.dumps(catalogue, indent=2, ensure_ascii=False) + "\n")
    os.replace(tmp, catalogue_path)
    files = {name: (out_dir / name).stat().st_size for name in ("emails.db", "auth.db")}
    seconds = time.monotonic() - t0
    return {
        "out_dir": str(out_dir), "seed": seed, "end": end.isoformat(), "days": DAYS,
        "hostile_rows_counted_in_requested": False,
        "rows": {
            "emails": {k: emails_info[k] for k in ("normal", "hostile", "rows")},
            "accounts": auth_info["accounts"], "sessions": auth_info["sessions"],
            "app_settings": 5,
        },
        "email_ids": {"normal": emails_info["normal_id_range"], "hostile_from": emails_info["hostile_id_base"] + 1,
                      "beyond_int32": ID_BEYOND_INT32},
        "fts_populated": emails_info["fts_populated"],
        "bytes": {**files, "total": sum(files.values())},
        "seconds": round(seconds, 2),
        "seconds_detail": {"emails_rows": emails_info["seconds_rows"], "emails_fts_wait": emails_info["seconds_fts_wait"],
                           "auth": auth_info["seconds"]},
        # CPU time of each process: what the work costs whatever else runs on the machine
        "cpu_seconds": {"emails_rows": emails_info["cpu_seconds_rows"], "emails_fts": emails_info["cpu_seconds_fts"],
                        "auth": auth_info["cpu_seconds"]},
        "catalogue": str(catalogue_path), "catalogue_entries": len(catalogue),
    }


# --- the command ---------------------------------------------------------------------------


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--end must be YYYY-MM-DD, not {text!r}") from None


def demo_data(args, cfg) -> int:
    out_dir = Path(args.out) if args.out else cfg.sources.emails_db.parent
    end = _date(args.end) if args.end else None

    def progress(step, done, total):
        print(f"  {step}: {done:,}/{total:,}", flush=True)

    summary = generate(out_dir, args.emails, args.accounts, seed=args.seed, end=end, progress=progress,
                       fts=not args.no_fts)
    rows = summary["rows"]
    print(f"wrote {out_dir}/emails.db ({summary['bytes']['emails.db'] / 1e6:,.1f} MB) and auth.db "
          f"({summary['bytes']['auth.db'] / 1e6:,.1f} MB) in {summary['seconds']} s")
    for table in ("emails", "accounts", "sessions"):
        r = rows[table]
        print(f"  {table:>9}: {r['rows']:>9,} rows ({r['normal']:,} normal + {r['hostile']} hostile)")
    print(f"  catalogue of hostile rows: {summary['catalogue']} ({summary['catalogue_entries']} entries)")
    print(f"  seed {summary['seed']}, 90 days of mail ending {summary['end']}")
    return 0


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "demo-data",
        help="generate a legacy dataset (emails.db, auth.db) with catalogued hostile rows",
        description="Writes DIR/emails.db and DIR/auth.db with the legacy DDL, 90 days of mail ending at --end, "
        "and DIR/catalogue.json: hostile rows at fixed keys with their expected outcome "
        "(docs/hostile-rows.md). Same --seed and --end give the same rows. Existing files are replaced "
        "atomically. --emails/--accounts count normal rows; the hostile ones come on top.",
    )
    p.add_argument("--emails", type=int, default=5000, help="normal emails (default 5000)")
    p.add_argument("--accounts", type=int, default=4000, help="normal accounts (default 4000)")
    p.add_argument("--out", help="output directory (default: the directory of sources.emails_db)")
    p.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    p.add_argument("--end", help="last day of mail, YYYY-MM-DD (default: today, UTC)")
    p.add_argument("--no-fts", action="store_true", help="leave the FTS5 index empty (faster)")
    p.set_defaults(func=demo_data)
