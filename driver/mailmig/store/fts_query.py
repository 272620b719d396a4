"""What people type into search, read the way PostgreSQL's websearch_to_tsquery reads it,
written as an FTS5 MATCH expression, so that both backends take the same queries.

The syntax: words (all must match), "quoted phrases", -word or -"phrase" (must not
match), `or` between two terms (either). Nothing a user types is an error: FTS5's own
operators and punctuation are only word separators here, and every word reaches FTS5
as a quoted string.
"""

from __future__ import annotations

import re

# FTS5's unicode61 tokenizer splits on everything but letters, digits (and marks); so
# does this, so that a word such as "invoice-2024" becomes the phrase "invoice 2024".
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')


def _phrase(text: str) -> str | None:
    words = _WORD.findall(text)
    if not words:
        return None
    return '"' + " ".join(words) + '"'


def to_fts5(query: str) -> str | None:
    """The FTS5 expression for `query`, or None when it can match nothing here (no words,
    or only negated ones: FTS5 has no unary NOT)."""
    groups: list[tuple[list[str], list[str]]] = [([], [])]
    pending_or = False
    for match in _TOKEN.finditer(query):
        negated, quoted, bare = match.group(1), match.group(2), match.group(3)
        if bare is not None and bare.lower() == "or":
            pending_or = bool(groups[-1][0] or groups[-1][1])
            continue
        if bare is not None and bare.startswith("-") and len(bare) > 1:
            negated, bare = "-", bare[1:]
        phrase = _phrase(quoted if quoted is not None else bare)
        if phrase is None:
            continue
        if pending_or:
            groups.append(([], []))
            pending_or = False
        (groups[-1][1] if negated else groups[-1][0]).append(phrase)
    alternatives = []
    for positives, negatives in groups:
        if not positives:
            continue  # only negations: FTS5 cannot say "everything but"
        expression = "(" + " AND ".join(positives) + ")"
        for negative in negatives:
            expression = f"({expression} NOT {negative})"
        alternatives.append(expression)
    if not alternatives:
        return None
    return " OR ".join(alternatives)
