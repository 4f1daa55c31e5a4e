"""The chaos harness in CI: a short seed set (the long run is `python -m tests.fault`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fault.harness import run

SEEDS = (1, 2)
CYCLES = 3  # the first two in the spawn windows of a run and of a sidecar, then one at random


@pytest.mark.parametrize("seed", SEEDS)
def test_every_promise_holds_across_random_sigkills(tmp_path: Path, seed: int) -> None:
    figures = run(tmp_path / "host", seed, CYCLES)
    assert figures.violations == [], figures.line()
    assert figures.cycles == CYCLES and figures.kills_in_spawn_windows >= 2 and figures.runs > 0
