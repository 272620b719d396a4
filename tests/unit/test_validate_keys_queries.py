"""The keyed canonical queries (validate_keys) select exactly what the bucket queries
select: one select list, two WHERE clauses."""

from __future__ import annotations

import pytest

from mailmig import queries
from mailmig.validate.tables import TABLES


def select_list(name: str) -> str:
    text = queries.load(name)
    return text[:text.index("\nWHERE")] if "\nWHERE" in text else text


@pytest.mark.parametrize("spec", TABLES, ids=lambda s: s.name)
def test_keyed_query_has_the_canonical_select_list(spec):
    assert select_list(spec.query + "_keys") == select_list(spec.query)
    assert "= ANY(%(keys)s" in queries.load(spec.query + "_keys")
