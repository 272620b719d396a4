"""The emails the benchmark writes: realistic rows from the demo generator, the same for
both stores, made before any timing starts (building them is not the store's work)."""

from __future__ import annotations

import json
import random
from dataclasses import replace

from mailmig.demo_data import EmailMaker, build_corpus
from mailmig.store import NewEmail

TEMPLATE_SEED = 2026
BIG_INBOX = "big.inbox@tempmail.test"


def templates(count: int = 200, seed: int = TEMPLATE_SEED) -> list[NewEmail]:
    """`count` emails as the service stores them (bodies of 1-3 KB, html on about half,
    JSON headers, the raw message); message_id and to_address are set per write."""
    rng = random.Random(seed)
    maker = EmailMaker(build_corpus(seed), rng, ["x@tempmail.test"], set())
    out = []
    for n in range(count):
        row = maker.row(n + 1, 1_790_000_000 + n)
        out.append(NewEmail(
            message_id=row["message_id"], from_address=row["from_address"], to_address=row["to_address"],
            subject=row["subject"], body=row["body"], html=row["html"], headers=json.loads(row["headers"]),
            raw_email=row["raw_email"], size=row["size"], spam_score=row["spam_score"]))
    return out


class EmailSource:
    """Fresh emails for one writer: a template with a new message_id, for one of the
    inboxes, created now (None: the store stamps it)."""

    def __init__(self, emails: list[NewEmail], inboxes: list[str], tag: str, seed: int = 0):
        self.emails = emails
        self.inboxes = inboxes
        self.tag = tag
        self.rng = random.Random(f"{tag}:{seed}")
        self.n = 0

    def next(self) -> NewEmail:
        self.n += 1
        template = self.emails[self.n % len(self.emails)]
        return replace(template, message_id=f"<bench.{self.tag}.{self.n}@bench.mailmig.test>",
                       to_address=self.rng.choice(self.inboxes), created_at=None)
