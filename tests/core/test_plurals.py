"""Counted nouns."""

from console.core.plurals import counted


def test_one_is_singular_and_every_other_count_is_plural():
    assert [counted(n, "plugin") for n in (0, 1, 2)] == ["0 plugins", "1 plugin", "2 plugins"]
    assert counted(3, "failed start") == "3 failed starts"
    assert counted(2, "process", "processes") == "2 processes"
