"""Reading a log as it is written: history, follow, rotation, cut-back, and the bounds."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from console.core.logtail import (
    CUT,
    HISTORY_BYTES,
    MAX_LINE_BYTES,
    Follower,
    LogChunk,
    LogFileError,
    clamp_lines,
    last_lines,
    split_chunk,
)


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as out:
        out.write(data)


def polled(follower: Follower) -> list[str]:
    return [line for chunk in follower.poll() for line in chunk.lines]


def test_history_is_the_last_lines_and_a_partial_line_waits_for_its_newline(tmp_path):
    log = tmp_path / "web.log"
    log.write_bytes(b"one\ntwo\nthree\nfour-so-f")
    follower = Follower(log, "web.log")
    assert follower.history(2) == LogChunk("web.log", ["two", "three"])
    assert follower.poll() == []
    append(log, b"ar\nfive\n")
    assert polled(follower) == ["four-so-far", "five"]
    follower.close()


def test_a_missing_file_says_so_and_is_followed_once_it_appears(tmp_path):
    log = tmp_path / "web.log"
    follower = Follower(log, "web.log")
    assert follower.history(10).note == "missing"
    assert follower.poll() == []
    log.write_bytes(b"hello\n")
    assert follower.poll() == [LogChunk("web.log", ["hello"])]
    follower.close()


def test_a_rotated_file_gives_its_last_words_then_the_new_file_from_its_start(tmp_path):
    log = tmp_path / "web.log"
    log.write_bytes(b"old 1\n")
    follower = Follower(log, "web.log")
    follower.history(10)
    append(log, b"old 2\nold partial")
    os.replace(log, tmp_path / "web.log.1")  # the sidecar's next launch moves its log aside
    log.write_bytes(b"new 1\n")
    assert follower.poll() == [LogChunk("web.log", ["old 2", "old partial"]), LogChunk("web.log", ["new 1"], "rotated")]
    follower.close()


def test_a_rotation_seen_before_the_new_file_exists_is_still_said(tmp_path):
    log = tmp_path / "web.log"
    log.write_bytes(b"old\n")
    follower = Follower(log, "web.log")
    follower.history(10)
    os.replace(log, tmp_path / "web.log.1")
    assert follower.poll() == []
    log.write_bytes(b"new\n")
    assert follower.poll() == [LogChunk("web.log", ["new"], "rotated")]
    follower.close()


def test_a_file_cut_back_in_place_is_read_again_from_its_start(tmp_path):
    log = tmp_path / "web.log"
    log.write_bytes(b"a\n" * 100)
    follower = Follower(log, "web.log")
    follower.history(1)
    os.truncate(log, 0)  # the sidecar log's size cap (copytruncate)
    append(log, b"fresh\n")
    assert follower.poll() == [LogChunk("web.log", ["fresh"], "truncated")]
    follower.close()


def test_links_and_fifos_are_never_read(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("token\n")
    link = tmp_path / "web.log"
    link.symlink_to(secret)
    with pytest.raises(LogFileError, match="not read"):
        Follower(link, "web.log").history(10)
    fifo = tmp_path / "run.log"
    os.mkfifo(fifo)
    with pytest.raises(LogFileError, match="not a regular file"):  # and it did not block on the open
        Follower(fifo, "run.log").history(10)


def test_an_endless_line_is_shown_cut_once_and_its_rest_skipped(tmp_path):
    log = tmp_path / "web.log"
    log.write_bytes(b"")
    follower = Follower(log, "web.log")
    follower.history(10)
    append(log, b"x" * (MAX_LINE_BYTES + 10))
    lines = polled(follower)
    assert lines == ["x" * MAX_LINE_BYTES + CUT]
    append(log, b"y" * (MAX_LINE_BYTES * 3) + b"\nnext\n")
    assert polled(follower) == ["next"]
    follower.close()


def test_history_reads_at_most_its_cap_from_a_huge_file(tmp_path):
    log = tmp_path / "web.log"
    line = b"z" * 99 + b"\n"
    log.write_bytes(line * (3 * HISTORY_BYTES // len(line)) + b"last\n")
    chunk = Follower(log, "web.log").history(5000)
    assert chunk.lines[-1] == "last"
    assert len(chunk.lines) <= HISTORY_BYTES // len(line) + 1
    assert all(text == "z" * 99 for text in chunk.lines[:-1])  # the cut first line is dropped, not shown half


@settings(max_examples=60, deadline=None)
@given(lines=st.lists(st.text(alphabet=st.characters(blacklist_characters="\n\r", blacklist_categories=("Cs",)),
                              max_size=40), max_size=30),
       cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=8))
def test_whatever_pieces_the_writer_writes_in_the_follower_sees_every_line_once(tmp_path_factory, lines, cuts):
    log = tmp_path_factory.mktemp("tail") / "run.log"
    log.write_bytes(b"")
    data = "".join(f"{line}\n" for line in lines).encode()
    follower = Follower(log, "run.log")
    assert follower.history(10).lines == []
    seen: list[str] = []
    start = 0
    for cut in sorted(min(cut, len(data)) for cut in cuts):
        append(log, data[start:cut])
        start = max(start, cut)
        seen += polled(follower)
    append(log, data[start:])
    seen += polled(follower)
    follower.close()
    assert seen == lines


@given(data=st.binary(max_size=300).map(lambda b: b.replace(b"\r", b"")), count=st.integers(min_value=0, max_value=20),
       from_start=st.booleans())
def test_last_lines_are_at_most_as_many_as_asked_and_whole_lines_of_the_file(data, count, from_start):
    got = last_lines(data, count, from_start=from_start)
    assert len(got) <= count and not any("\n" in line for line in got)
    everything = last_lines(data, 10**6, from_start=from_start)
    assert got == (everything[-count:] if count else [])
    text = data.decode("utf-8", "replace")
    if from_start and data.endswith(b"\n") and len(data) > 1:
        assert "".join(f"{line}\n" for line in everything) == text
    if not from_start and everything:  # the first, possibly cut, line is never among them
        assert text.endswith("".join(f"{line}\n" for line in everything).removesuffix("\n") + ("\n" if
                             data.endswith(b"\n") else ""))
        assert len(everything) == data.removesuffix(b"\n").count(b"\n")


def test_counts_from_outside_are_bounded():
    assert [clamp_lines(v) for v in (-5, 7, 10**9, "12", None, True)] == [0, 7, 5000, 100, 100, 100]


def test_a_big_chunk_goes_out_in_pieces_that_fit_a_socket_line():
    chunk = LogChunk("web.log", ["a" * 1000] * 1000, "rotated")
    pieces = split_chunk(chunk, max_bytes=64 * 1024)
    assert [line for piece in pieces for line in piece.lines] == chunk.lines
    assert all(sum(len(line) + 1 for line in piece.lines) <= 64 * 1024 for piece in pieces)
    assert [piece.note for piece in pieces] == ["rotated"] + [""] * (len(pieces) - 1)
    assert split_chunk(LogChunk("web.log", [], "missing")) == [LogChunk("web.log", [], "missing")]
