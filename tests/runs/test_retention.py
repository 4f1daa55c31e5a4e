"""Retention keeps the ledger, run directories and event log bounded by policy, and never touches
what is not a finished run's own directory."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from console.core.fake_clock import FakeClock
from console.core.store import RUN_KIND, Store
from console.runs.ledger import RunIds, get_run, queue_run
from console.runs.retention import DAY, Candidate, RetentionPolicy, prunable, prune

POLICY = RetentionPolicy(keep_runs_per_loop=3, keep_runs_days=2.0, keep_events=100)


@given(rank=st.integers(1, 10), status=st.sampled_from(["queued", "running", "succeeded", "failed", "cancelled"]),
       age_days=st.floats(0, 10), finished=st.booleans())
def test_a_run_goes_only_when_past_its_loops_newest_n_older_than_d_days_and_finished(rank, status, age_days,
                                                                                      finished):
    now = 1_800_000_000.0
    at = now - age_days * DAY
    run = Candidate("01", rank, status, at if finished else None, at)
    expected = rank > 3 and status not in ("queued", "running") and age_days >= 2.0
    assert prunable(run, POLICY, now) is expected


def _finished_run(store: Store, ids: RunIds, loop_id: str, runs_root: Path) -> str:
    run_id = ids.new(store.clock.time())
    queue_run(store, run_id, loop_id, "test")
    store.transition(RUN_KIND, run_id, "running", "started", columns={"pid": 1, "started_at": store.clock.time()})
    store.transition(RUN_KIND, run_id, "succeeded", "done", columns={"finished_at": store.clock.time()})
    (runs_root / run_id).mkdir(parents=True)
    (runs_root / run_id / "output.log").write_text("out\n")
    return run_id


async def test_a_pass_prunes_old_runs_past_the_newest_n_and_their_directories_and_old_events(tmp_path: Path):
    clock = FakeClock()
    store = Store.open(tmp_path / "loopctl.db", clock)
    runs_root = tmp_path / "runs"
    ids = RunIds()
    old = [_finished_run(store, ids, "docs", runs_root) for _ in range(6)]
    clock.advance(3 * DAY)  # the six are three days old now
    recent = [_finished_run(store, ids, "docs", runs_root) for _ in range(2)]
    other_loop = _finished_run(store, ids, "triage", runs_root)  # alone on its loop: its newest, kept
    clock.advance(3 * DAY)
    running = ids.new(clock.time())
    queue_run(store, running, "docs", "test")
    store.transition(RUN_KIND, running, "running", "started", columns={"pid": 1, "started_at": clock.time()})
    # A hostile agent linked a directory of the operator's in place of an old run's directory.
    outside = tmp_path / "operator-files"
    outside.mkdir()
    (outside / "keep.txt").write_text("precious\n")
    victim = old[0]
    for item in (runs_root / victim).iterdir():
        item.unlink()
    (runs_root / victim).rmdir()
    (runs_root / victim).symlink_to(outside, target_is_directory=True)
    for i in range(150):
        store.transition("sidecar", "web", "ready" if i % 2 else "starting", "flap")

    result = await prune(store, runs_root, POLICY, clock.time())

    # docs keeps its newest 3 finished runs (the two recent ones, 3 days old now, and the newest old one)
    # and the one still running, which counts for nothing: a run in progress never pushes out the last result
    kept = {r for r in [*old, *recent, other_loop, running] if get_run(store, r) is not None}
    assert kept == {old[-1], *recent, other_loop, running}
    assert result.runs == 5 and result.directories == 5
    assert sorted(p.name for p in runs_root.iterdir()) == sorted([old[-1], *recent, other_loop])
    assert (outside / "keep.txt").read_text() == "precious\n"  # the link went, never what it pointed at
    assert len(store.recent_events(1000)) == 100 and result.events > 0
    again = await prune(store, runs_root, POLICY, clock.time())
    assert (again.runs, again.directories, again.events) == (0, 0, 0)
    store.close()


async def test_the_engine_prunes_by_the_hosts_policy_at_start_and_every_minute(tmp_path: Path):
    from console.core.config import HostConfig, HostSection, LoadedConfig
    from console.core.paths import Paths
    from console.host.engine import Engine
    from tests.conftest import drive

    paths = Paths(state_dir=tmp_path / "state", config_path=tmp_path / "loopctl.toml", config_explicit=False)
    paths.state_dir.mkdir()
    clock = FakeClock()
    store = Store.open(paths.database, clock)
    ids = RunIds()
    first = [_finished_run(store, ids, "docs", paths.state_dir / "runs") for _ in range(5)]
    config = HostConfig(host=HostSection(keep_runs_per_loop=2, keep_runs_days=1.0, keep_events=100))
    engine = Engine(paths=paths, loaded=LoadedConfig(config, paths.config_path, True), store=store, clock=clock)
    clock.advance(2 * DAY)
    await engine.start()
    try:
        await drive(clock, lambda: get_run(store, first[2]) is None, step=0.0, what="the pass at start")
        assert [get_run(store, r) is not None for r in first] == [False, False, False, True, True]
        later = [_finished_run(store, ids, "docs", paths.state_dir / "runs") for _ in range(2)]
        clock.advance(2 * DAY)
        await drive(clock, lambda: get_run(store, first[4]) is None, step=1.0, what="the pass a minute later")
        assert all(get_run(store, r) is not None for r in later)
    finally:
        await engine.stop()
        store.close()


async def test_what_a_continuation_or_a_retry_still_to_come_needs_is_kept(tmp_path: Path):
    """The source of a queued continuation (its chain) and of a queued retry outlive their horizon."""
    clock = FakeClock()
    store = Store.open(tmp_path / "loopctl.db", clock)
    ids = RunIds()
    runs_root = tmp_path / "runs"
    source = _finished_run(store, ids, "docs", runs_root)
    retried = _finished_run(store, ids, "docs", runs_root)
    plain = _finished_run(store, ids, "docs", runs_root)
    clock.advance(30 * DAY)
    for _ in range(3):
        _finished_run(store, ids, "docs", runs_root)
    queue_run(store, ids.new(clock.time()), "docs", "continuation", chain_id=source, continuation_attempt=1)
    queue_run(store, ids.new(clock.time()), "docs", "retry", retry_of=retried, process_loss_retry_count=1)
    await prune(store, runs_root, RetentionPolicy(keep_runs_per_loop=1, keep_runs_days=0.0), clock.time())
    assert get_run(store, source) is not None and get_run(store, retried) is not None
    assert get_run(store, plain) is None
    store.close()


async def test_more_than_a_batch_is_caught_up_by_passes_a_second_apart_not_a_minute(tmp_path: Path):
    """20 runs/s is 1,200 a minute: a pass of at most BATCH a minute fell behind by the difference,
    for ever (the one-hour soak: runs/ grew by 486 directories a minute)."""
    from console.core.config import HostConfig, HostSection, LoadedConfig
    from console.core.paths import Paths
    from console.host.engine import Engine
    from console.runs.retention import BATCH, CATCH_UP_SECONDS, PERIOD_SECONDS
    from tests.conftest import drive

    paths = Paths(state_dir=tmp_path / "state", config_path=tmp_path / "loopctl.toml", config_explicit=False)
    paths.state_dir.mkdir()
    clock = FakeClock()
    store = Store.open(paths.database, clock)
    ids = RunIds()
    with store.batch():
        runs = [_finished_run(store, ids, f"loop-{n % 7}", paths.state_dir / "runs") for n in range(2 * BATCH + 120)]
    config = HostConfig(host=HostSection(keep_runs_per_loop=1, keep_runs_days=0, keep_events=100))
    engine = Engine(paths=paths, loaded=LoadedConfig(config, paths.config_path, True), store=store, clock=clock)
    await engine.start()
    started = clock.monotonic()
    try:
        def caught_up() -> bool:  # rows first, then their directories (on a thread)
            return sum(get_run(store, r) is not None for r in runs) == 7 and \
                len(list((paths.state_dir / "runs").iterdir())) == 7

        await drive(clock, caught_up, step=CATCH_UP_SECONDS / 2, what="the ledger and runs/ caught up")
        assert clock.monotonic() - started < PERIOD_SECONDS  # three passes, a second apart
        assert sorted(p.name for p in (paths.state_dir / "runs").iterdir()) == \
            sorted(r for r in runs if get_run(store, r) is not None)
    finally:
        await engine.stop()
        store.close()
