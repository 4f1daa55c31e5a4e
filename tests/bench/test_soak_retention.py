"""The soak of tests/bench/soak_retention.py, short (about 25 s): a real `loopctl run` at 20 runs/s with
retention set small, a retention pass every second (the LOOPCTL_TESTING knob) so the horizon comes in
seconds, and a sidecar writing 1 MiB/s. It checks the bounded-disk properties of issue 19, not speeds:
run directories and the database flat after the horizon, the event log at its cap, and the chatty
sidecar's log never over its cap. The engine's pace on a shared machine is not asserted.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from soak_retention import Check, MiB, Soak, checks, run_soak

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("soak")]  # one soak for the three

LOOPS, KEEP = 40, 2


@pytest.fixture(scope="module")
def soaked() -> Iterator[tuple[Soak, dict[str, Check]]]:
    soak = Soak(duration=25.0, rate=20.0, loops=LOOPS, keep_runs_per_loop=KEEP, keep_events=200,
                chatty_bytes_per_second=MiB, log_cap=4 * MiB, sample_every=0.5, warmup=8.0, retention_period=1.0)
    with tempfile.TemporaryDirectory(prefix="lt-soak-") as work:  # short: the engine's socket lives in it
        run_soak(Path(work), soak)
    yield soak, {c.name: c for c in checks(soak)}


def test_the_soak_reached_its_retention_horizon_with_time_to_spare(soaked: tuple[Soak, dict[str, Check]]) -> None:
    soak, _found = soaked
    after = [s for s in soak.samples if s.at >= soak.horizon]
    assert len(after) >= 20, f"only {len(after)} samples after the horizon ({soak.horizon:.1f} s)"
    # Retention had work: well over what it keeps was run, and runs went on after the horizon (loosely:
    # a loaded machine runs them slower; this is not a speed test).
    assert after[-1].runs_total >= 1.5 * LOOPS * (KEEP + 2), f"{after[-1].runs_total} runs in all"
    assert after[-1].runs_total - after[0].runs_total >= LOOPS, "too few runs after the horizon to say"


def test_run_directories_and_the_database_stay_flat(soaked: tuple[Soak, dict[str, Check]]) -> None:
    soak, found = soaked
    for name in ("run directories under runs/", "disk under runs/", "loopctl.db + WAL", "events kept"):
        assert found[name].ok, f"{name}: {found[name].figure}"
    after = [s for s in soak.samples if s.at >= soak.horizon]
    # Each loop keeps its newest KEEP finished runs, plus the one it is running (and one being pruned).
    assert max(s.run_dirs for s in after) <= LOOPS * (KEEP + 2)
    assert max(s.events for s in after) <= soak.keep_events + 20 * LOOPS  # at most a pass's worth over


def test_a_chatty_sidecar_log_never_passes_its_cap(soaked: tuple[Soak, dict[str, Check]]) -> None:
    _soak, found = soaked
    check = found["chatty sidecar's log, largest seen"]
    assert check.ok, check.figure
