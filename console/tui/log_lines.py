"""The log view's model, pure: the lines it keeps, how they break into screen rows, and search.

Lines arrive as the `tail` op sends them (`LogChunk`s); each is made printable once, on arrival, with
tabs expanded, so the width Rich measures is the width drawn (a raw ESC measures 0 cells and is drawn
as `␛`, 1 cell). A header row names each file as the log moves to it, and what happened to it.
"""

from __future__ import annotations

from rich.cells import cell_len, chop_cells

from console.core.logtail import LogChunk
from console.core.printable import printable
from console.core.records import View

MAX_KEPT = 10_000  # lines held by the view; the oldest go first, a tenth at a time
NOTES = {"missing": "no such file yet", "rotated": "a new file: the sidecar launched again",
         "truncated": "cut back past its size cap, read again from its start"}


class LogLine(View, frozen=True):
    text: str  # printable: one cell per character drawn
    header: bool = False  # a file's name and what happened to it, not a line of the log


def shown(text: str) -> str:
    return printable(text.expandtabs(8), lines=False)


def chunk_lines(chunk: LogChunk, previous_file: str | None) -> list[LogLine]:
    """The lines a chunk adds: a header when the log moves to another file or something happened
    to it, then its lines."""
    out: list[LogLine] = []
    if chunk.file != previous_file or chunk.note:
        said = f": {NOTES.get(chunk.note, chunk.note)}" if chunk.note else ""
        out.append(LogLine(shown(f"── {chunk.file}{said} ──"), header=True))
    out.extend(LogLine(shown(line)) for line in chunk.lines)
    return out


class Row(View, frozen=True):
    """One screen row: `line`'s text from character `start` (several rows when it wraps)."""

    line: int
    start: int
    text: str


def rows_of(lines: list[LogLine], first: int, width: int, *, wrap: bool) -> list[Row]:
    """The rows of `lines[first:]` at `width` columns. Unwrapped, a line is one row however wide."""
    out: list[Row] = []
    for index in range(first, len(lines)):
        text = lines[index].text
        if not wrap or width <= 0 or cell_len(text) <= width:
            out.append(Row(index, 0, text))
            continue
        start = 0
        for piece in chop_cells(text, width):
            out.append(Row(index, start, piece))
            start += len(piece)
    return out


def spans(text: str, query: str) -> list[tuple[int, int]]:
    """Where `query` occurs in `text`, case-insensitively; no overlaps."""
    if not query:
        return []
    haystack, needle = text.casefold(), query.casefold()
    found: list[tuple[int, int]] = []
    at = haystack.find(needle)
    while at >= 0:
        found.append((at, at + len(needle)))
        at = haystack.find(needle, at + len(needle))
    return found


def matching(lines: list[LogLine], query: str) -> list[int]:
    """Indices of the log's lines (never headers) that contain `query`."""
    needle = query.casefold()
    return [i for i, line in enumerate(lines) if needle and not line.header and needle in line.text.casefold()]


def next_match(matches: list[int], current: int | None, *, forward: bool) -> int | None:
    """The match after (or before) line `current`, wrapping around; from nowhere, the first (last)."""
    if not matches:
        return None
    if current is None:
        return matches[0] if forward else matches[-1]
    if forward:
        return next((m for m in matches if m > current), matches[0])
    return next((m for m in reversed(matches) if m < current), matches[-1])


def trimmed(lines: list[LogLine]) -> int:
    """How many of the oldest lines to drop now: none until past `MAX_KEPT`, then a tenth of it, so
    dropping (which re-lays every row) happens once per thousand lines, not on each."""
    return len(lines) - MAX_KEPT + MAX_KEPT // 10 if len(lines) > MAX_KEPT else 0
