"""Rules about the code itself that a review would otherwise have to remember."""

from __future__ import annotations

import re
from pathlib import Path

import console

ROOT = Path(console.__file__).parent
ENGINE_PACKAGES = {"core", "sidecars", "runs", "remote", "readmodel", "host"}


def lines_matching(pattern: str) -> list[str]:
    regex = re.compile(pattern)
    return [f"{path.relative_to(ROOT)}:{n}" for path in ROOT.rglob("*.py")
            for n, line in enumerate(path.read_text().splitlines(), 1) if regex.search(line)]


def test_no_asyncio_wait_for():
    """On Python 3.11 `asyncio.wait_for` can swallow a cancellation when the awaited call finishes at the
    same moment (gh-86296). It once left a host-heartbeat task running through an engine's stop, and the
    stop hung. `async with asyncio.timeout(...)` does not have that flaw."""
    assert lines_matching(r"asyncio\.wait_for\(") == []


def test_no_cancelled_error_is_suppressed():
    """`with suppress(CancelledError): await task` after `task.cancel()` swallows the caller's own
    cancellation too (an engine stop cancelled mid-way carried on as if it had not been):
    `waiting.cancel_and_wait` re-raises when the caller itself is being cancelled."""
    assert lines_matching(r"suppress\(asyncio\.CancelledError") == []


def test_the_engine_never_imports_textual():
    hits = lines_matching(r"^\s*(from|import) (textual|rich)\b")
    assert [hit for hit in hits if hit.split("/")[0] in ENGINE_PACKAGES] == []
