"""Table cells whose text moves with the clock: a countdown, an age, a running duration. Pure.

A row carries the absolute time (as the snapshot does) instead of its text at one instant, so a
row is equal to itself from one second to the next: a snapshot push re-diffs only rows whose facts
changed, and the one-second tick redraws only these cells, only in the rows in view, without
building any row again (issue 19: re-syncing 1,000 loop rows every second was most of the
console's CPU)."""

from __future__ import annotations

from typing import Literal

from console.core.records import View
from console.core.time_text import duration
from console.tui.format import ago, countdown

Kind = Literal["countdown", "ago", "elapsed"]


class Ticking(View, frozen=True):
    """`countdown`: `in 5m 2s` to `at` ("now" once past); `ago`: `3m ago` since `at`; `elapsed`: the
    duration since `at` (a running run's)."""

    kind: Kind
    at: float

    def text(self, now: float) -> str:
        if self.kind == "countdown":
            return countdown(self.at, now)
        if self.kind == "ago":
            return ago(self.at, now)
        return duration(now - self.at)

    def seconds(self, now: float) -> float:
        """What the cell says as a number, for sorting (`in 50s` before `in 1m 5s`). The order of two
        cells of one kind does not change as time passes, so a sorted table stays sorted between
        pushes without sorting on every tick."""
        return self.at - now if self.kind == "countdown" else now - self.at


def countdown_cell(at: float | None) -> Ticking | str:
    return "-" if at is None else Ticking("countdown", at)


def ago_cell(at: float | None) -> Ticking | str:
    return "-" if at is None else Ticking("ago", at)
