"""The one table printer and the progress of long stages (mailmig.console): plain ASCII
without a control character when the output is not a terminal, rich's box lines and bars
when it is."""

from __future__ import annotations

import io
import re

from mailmig import console

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def test_a_table_aligns_numbers_right_and_says_what_none_and_booleans_are():
    # booleans count as numbers (yes/NO right-aligned), as the old printer had them
    text = console.table(["table", "rows", "ratio", "ok"],
                         [["emails", 261042, 1.5, True], ["accounts", 8, None, False]], terminal=False)
    assert text.splitlines() == [
        "table        rows  ratio   ok",
        "--------- -------- ------ ---",
        "emails    261,042   1.50  yes",
        "accounts        8      -   NO",
    ]
    assert not CONTROL.search(text)


def test_a_table_is_never_wrapped_whatever_its_width():
    long = "x" * 500
    text = console.table(["what", "value"], [["a", long]], title="wide", terminal=False)
    assert text.splitlines()[0] == "wide"
    assert any(line.endswith(long) for line in text.splitlines())


def test_on_a_terminal_the_table_has_box_lines_and_still_no_control_character():
    text = console.table(["a", "b"], [[1, 2]], terminal=True)
    assert "─" in text and not CONTROL.search(text)


def test_without_a_terminal_a_bar_is_a_line_every_few_seconds_and_one_at_the_end(monkeypatch):
    lines, clock = [], [100.0]
    monkeypatch.setattr(console.time, "monotonic", lambda: clock[0])
    with console.bar(lines.append, "merge emails", 5000, every=5.0) as bar:
        bar.update(1000, "(1/5 chunks)")  # too soon after the start: no line
        clock[0] += 5.0
        bar.update(2000, "(2/5 chunks)")
        clock[0] += 1.0
        bar.update(3000, "(3/5 chunks)")  # too soon after the last line
        bar.update(5000, "(5/5 chunks)")
    assert lines == ["   merge emails: 2,000/5,000 rows (2/5 chunks)",
                     "   merge emails: 5,000/5,000 rows (5/5 chunks)"]


def test_a_bar_without_a_count_says_only_its_note():
    lines = []
    with console.bar(lines.append, "staging", None) as bar:
        bar.update(0, "(12 MB)")
    assert lines == ["   staging: (12 MB)"]


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_on_a_terminal_a_bar_is_drawn_and_lines_still_reach_the_output(monkeypatch):
    monkeypatch.delenv("TERM", raising=False)
    out = Terminal()
    say = console.Say(out)
    assert say.live
    with console.bar(say, "merge emails", 10) as bar:
        say("== merge emails")
        bar.update(10, "(1/1 chunks)")
    text = out.getvalue()
    assert "== merge emails" in text and "10/10 rows" in text and "━" in text
    assert say._bars is None  # the live display ended with its last bar


def test_not_a_terminal_means_plain_print():
    out = io.StringIO()
    say = console.Say(out)
    assert not say.live
    say("a line")
    assert out.getvalue() == "a line\n"
