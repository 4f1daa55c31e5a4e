"""Rules about the code itself that a review would otherwise have to remember."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import console

ROOT = Path(console.__file__).parent


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


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(Path(sys.executable).with_name("lint-imports")), "--no-cache"], cwd=root,
                          env={**os.environ, "PYTHONPATH": str(root)}, capture_output=True, text=True, check=False)


def test_the_layering_contracts_hold():
    """The layers of DESIGN rule 11 are import-linter contracts in pyproject.toml (the engine never imports
    Textual, rich, httpx outside the control-plane client, or the reference control plane; concepts never
    import each other; nothing imports upward)."""
    result = _lint_imports(ROOT.parent)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "Contracts: 7 kept, 0 broken." in result.stdout


@pytest.mark.parametrize(("module", "line", "broken"), [
    ("core/clock.py", "import console.sidecars.ports", "layers"),
    ("sidecars/ports.py", "import console.runs.ledger", "layers"),
    ("runs/liveness.py", "import textual", "the engine never imports Textual or rich"),
    ("sidecars/health.py", "import httpx", "httpx only in the control-plane client"),
    ("fleet/table.py", "import textual", "the engine never imports Textual or rich"),
    ("readmodel/tray.py", "import console.runs.scheduler", "the read model composes the concepts' views"),
    ("tui/rows.py", "import console.runs.ledger", "the TUI sees the read model"),
    ("core/state_home.py", "import msgspec", "dial-stdio loads the standard library's"),
])
def test_a_forbidden_import_breaks_a_contract(tmp_path: Path, module: str, line: str, broken: str):
    """The contracts are not decoration: one forbidden import in a copy of the tree fails `lint-imports`."""
    shutil.copytree(ROOT, tmp_path / "console", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT.parent / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "console" / module
    target.write_text(target.read_text() + f"\n{line}  # the forbidden import\n")
    result = _lint_imports(tmp_path)
    assert result.returncode == 1 and "1 broken" in result.stdout
    assert broken in result.stdout.split("Broken contracts", 1)[1]
