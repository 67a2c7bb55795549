"""The shared message helpers stay one short line whatever they are given."""

from __future__ import annotations

from nnsee.errors import first_few, not_one_of


def test_not_one_of_lists_at_most_30_choices_and_cuts_the_value():
    message = not_one_of("class", "x" * 10_000, (f"c{i}" for i in range(100_000)))
    assert message.startswith("class must be one of c0, c1, c2,") and "c29 and 99,970 more; got 'xxx" in message
    assert len(message) < 400 and "\n" not in message
    assert not_one_of("kind", "b", ["a", "c"]) == "kind must be one of a, c; got 'b'"


def test_first_few_counts_what_it_leaves_out():
    assert first_few(["a", "b"]) == "'a', 'b'"
    assert first_few(range(100_000)) == "0, 1, 2, 3, 4 and 99,995 more"
    assert first_few(["y" * 500]) == "'" + "y" * 78 + "…"
