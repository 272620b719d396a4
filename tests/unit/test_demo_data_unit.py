"""The generator's pieces without writing files: DDL split, row shape, determinism."""

import json
import random
import re
import sqlite3

from mailmig import demo_data


def test_ddl_split_keeps_every_statement_verbatim_and_indexes_last():
    tables, indexes = demo_data._split_ddl(demo_data.EMAILS_DDL)
    assert [re.match(r"CREATE (?:VIRTUAL )?TABLE (\w+)", s).group(1) for s in tables] == ["emails", "emails_fts"]
    assert all(s.startswith("CREATE INDEX") for s in indexes) and len(indexes) == 2
    assert all(s in demo_data.EMAILS_DDL for s in tables + indexes)
    tables, indexes = demo_data._split_ddl(demo_data.AUTH_DDL)
    assert len(tables) == 2 and len(indexes) == 1
    assert all(sqlite3.complete_statement(s) for s in tables + indexes)


def test_account_addresses_are_unique_deterministic_and_seed_dependent():
    first = demo_data.account_addresses(7, 3000)
    assert first == demo_data.account_addresses(7, 3000)
    assert first != demo_data.account_addresses(8, 3000)
    ids = [i for i, _ in first]
    assert ids == sorted(set(ids)) and ids[0] == 1 and ids[-1] > len(ids)
    emails = [e.lower() for _, e in first]
    assert len(set(emails)) == len(emails)
    assert all(re.fullmatch(r"[a-z]+\.[a-z]+\d{4}@tempmail\.test", e) for e in emails)


def test_bcrypt_like_hash_has_the_bcrypt_shape():
    rng = random.Random(1)
    for _ in range(100):
        value = demo_data._bcrypt_like(rng)
        assert re.fullmatch(r"\$2b\$12\$[./A-Za-z0-9]{53}", value)


def test_an_email_row_is_self_consistent():
    corpus = demo_data.build_corpus(3, chars=200_000)
    maker = demo_data.EmailMaker(corpus, random.Random(5), ["inbox.one1234@tempmail.test"], set())
    for email_id in range(1, 400):
        row = maker.row(email_id, 1_770_000_000)
        assert list(row) == list(demo_data.EMAIL_COLUMNS)
        assert row["size"] == len(row["raw_email"].encode())
        assert row["body"] in row["raw_email"] and 1000 <= len(row["body"].encode())
        if row["html"] is not None:
            assert row["html"] in row["raw_email"] and "multipart/alternative" in row["raw_email"]
        headers = json.loads(row["headers"])
        assert headers["Subject"] == row["subject"] and headers["Message-ID"] == row["message_id"]
        assert row["starred"] in (0, 1) and row["is_read"] in (0, 1) and 0 <= row["spam_score"] <= 10
