"""Counted nouns in what an operator reads: `1 plugin`, `3 sidecars`, `0 commits`."""

from __future__ import annotations


def counted(n: int, noun: str, plural: str | None = None) -> str:
    return f"{n} {noun if n == 1 else plural or noun + 's'}"
