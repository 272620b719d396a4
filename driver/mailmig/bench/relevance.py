"""Which engine ranks better: a judged set planted in both stores, graded before any
engine saw it, scored by nDCG@10.

The query's two words occur nowhere else in the data, so the judged emails are the only
matches. Grades follow what a reader asking "lighthouse regatta" wants first, written
down before measuring and identical for both engines:
  3  about it: the phrase in the subject, the body about it;
  2  mentions it: the phrase once in an ordinary body, subject about something else;
  1  incidental: both words once, far apart, in a long body;
  0  stuffing: a long list repeating "lighthouse" dozens of times, "regatta" once.
"""

from __future__ import annotations

import math
import random

from mailmig.store import NewEmail

QUERY = "lighthouse regatta"
FILLER_SEED = 7


def judged_emails(filler: list[NewEmail]) -> list[tuple[NewEmail, int]]:
    """The planted emails with their grades (bodies built from ordinary template text)."""
    rng = random.Random(FILLER_SEED)
    texts = [e.body or "" for e in filler]

    def text(chars: int) -> str:
        out = ""
        while len(out) < chars:
            out += rng.choice(texts) + "\n\n"
        return out[:chars]

    planted: list[tuple[str, str, int]] = []
    for n in range(4):
        planted.append((f"Lighthouse regatta {2027 + n}: schedule, moorings and tickets",
                        f"The lighthouse regatta starts at nine. {text(600)} See you at the lighthouse regatta, "
                        f"and bring this mail to the harbour office. {text(400)}", 3))
    for n in range(6):
        planted.append((f"Weekly digest {n + 1}",
                        f"{text(700)} By the way, the lighthouse regatta is on Saturday. {text(700)}", 2))
    for n in range(6):
        planted.append((f"Travel notes {n + 1}",
                        f"We walked to the old lighthouse. {text(4000)} Someone mentioned a regatta. {text(300)}", 1))
    for n in range(4):
        stuffing = " ".join(f"lighthouse {rng.choice(texts)[:40]}" for _ in range(60))
        planted.append((f"Coastal directory {n + 1}", f"{stuffing} regatta {text(2000)}", 0))
    out = []
    for n, (subject, body, grade) in enumerate(planted):
        base = filler[n % len(filler)]
        out.append((NewEmail(message_id=f"<judged.{n}@bench.mailmig.test>", from_address=base.from_address,
                             to_address=f"judged{n}@tempmail.test", subject=subject, body=body, headers=None,
                             raw_email=f"Subject: {subject}\n\n{body}", size=len(body)), grade))
    return out


def ndcg(grades_in_rank_order: list[int], all_grades: list[int], k: int = 10) -> float:
    def dcg(grades):
        return sum((2 ** g - 1) / math.log2(i + 2) for i, g in enumerate(grades[:k]))

    ideal = dcg(sorted(all_grades, reverse=True))
    return round(dcg(grades_in_rank_order) / ideal, 3) if ideal else 0.0


def judge(backend, grades_by_message_id: dict[str, int]) -> dict:
    hits = backend.search(QUERY, limit=10)
    ranked = [grades_by_message_id.get(h.message_id, 0) for h in hits]
    return {"query": QUERY, "top10_grades": ranked, "ndcg_at_10": ndcg(ranked, list(grades_by_message_id.values()))}
