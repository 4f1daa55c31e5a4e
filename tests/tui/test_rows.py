"""The tables as plain data: what an empty table says."""

from __future__ import annotations

from console.tui.rows import SELECT_HINT, TABLES, placeholder


def test_a_table_with_rows_asks_for_a_selection():
    assert placeholder("runs", 3, "") == SELECT_HINT
    assert placeholder("runs", 3, "triage") == SELECT_HINT


def test_an_empty_table_says_why_and_a_filter_that_hides_everything_says_how_to_clear_it():
    assert placeholder("overview", 0, "").startswith("Nothing needs attention")
    assert placeholder("sidecars", 0, "") == "No sidecars: this host's config declares none."
    assert placeholder("runs", 0, "nope") == "No rows here match the filter 'nope': esc clears it."


def test_every_table_has_its_own_empty_text():
    texts = [spec.empty for spec in TABLES.values()]
    assert all(texts) and len(set(texts)) == len(texts)
