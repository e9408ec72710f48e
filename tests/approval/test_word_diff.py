"""approval.word_diff: word runs that rebuild both texts, one changed word as that word."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from newsroom.approval import word_diff

WORDS = st.lists(st.sampled_from(["Darmstadt", "hält", "zusammen", " ", "  ", "\n", "\n\n",
                                  "https://www.darmstadt.de/a?b=(c)", "Magistrat.", "🇩🇪"]),
                 max_size=30).map("".join)


@given(old=WORDS, new=WORDS)
def test_runs_rebuild_both_texts(old, new):
    runs = word_diff(old, new)
    assert "".join(text for kind, text in runs if kind != "added") == old
    assert "".join(text for kind, text in runs if kind != "removed") == new
    assert all(text for _, text in runs)


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("Gemeinsamer Aufruf des Magistrats.\nhttps://x.de", "Kurzer Aufruf des Magistrats.\nhttps://x.de",
     [("removed", "Gemeinsamer"), ("added", "Kurzer"),
      ("same", " Aufruf des Magistrats.\nhttps://x.de")]),
    ("eins zwei drei vier", "eins X Y vier",  # the space between two changes joins them
     [("same", "eins "), ("removed", "zwei drei"), ("added", "X Y"), ("same", " vier")]),
    ("Zeile eins\nZeile zwei", "Zeile eins\n\nZeile zwei",
     [("same", "Zeile eins\n"), ("added", "\n"), ("same", "Zeile zwei")]),
    ("gleich", "gleich", [("same", "gleich")]),
])
def test_table(old, new, expected):
    assert word_diff(old, new) == expected
