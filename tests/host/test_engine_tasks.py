"""Each of the engine's own long-lived tasks, killed by an exception in its body: the tray names the
task and its thing, the task runs again after its backoff, and the engine still stops cleanly."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from console.controlplane.identity import load_or_create_key, store_refresh_token
from console.core.config import ControlPlaneSection, HostConfig, LoopConfig
from console.host.engine import Engine
from tests.conftest import drive, finish_with_clock
from tests.controlplane.hostile import HostilePlane
from tests.host.test_engine_config import make_engine


@pytest.fixture(scope="module")
def plane() -> Iterator[HostilePlane]:
    with HostilePlane() as p:
        yield p


def once_raising(target: object, name: str, calls: list[int]) -> None:
    """Make `target.name` raise the first time it is called, then behave as before."""
    original = getattr(target, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError(f"killed {name}")
        return original(*args, **kwargs)

    setattr(target, name, wrapper)


# task name -> (the thing it works for, how to reach the function its body calls each time round)
KILLS: dict[str, tuple[str, Callable[[Engine], tuple[object, str]]]] = {
    "host-heartbeat": ("host:h_hostile", lambda e: (e.link.client, "host_heartbeat")),
    "heartbeat:docs": ("loop:docs", lambda e: (e.link.heartbeats, "beat")),
    "config-pull": ("remote_config:host", lambda e: (e.remote, "schedule")),
    "loop:docs": ("loop:docs", lambda e: (e.loops, "queue_fresh")),
    "reaper": ("", lambda e: (e.loops, "reap")),
}


@pytest.mark.parametrize("name", list(KILLS))
async def test_a_killed_task_is_said_and_restarted(tmp_path, plane, name):
    section = ControlPlaneSection(url=plane.url, host_id="h_hostile", loop_heartbeat_seconds=5,
                                  heartbeat_interval_seconds=5, poll_interval_seconds=5)
    loop = LoopConfig(id="docs", command=[sys.executable, "-c", "pass"], interval_seconds=5)
    (tmp_path / "state").mkdir()
    load_or_create_key(tmp_path / "state")
    store_refresh_token(tmp_path / "state", "rf_good")
    engine, clock = make_engine(tmp_path, HostConfig(control_plane=section, loop=[loop]))
    subject, reach = KILLS[name]
    calls: list[int] = []
    await engine.start()
    try:
        assert name in engine.tasks._tasks
        once_raising(*reach(engine), calls)
        await drive(clock, lambda: name in engine.tasks.trouble, step=1.0, what=f"{name} to crash")
        reason = next(r for r in engine.snapshot().tray.reasons if r.code == "task_crashed")
        assert reason.subject == subject and f"engine task {name} crashed (RuntimeError: killed" in reason.text
        await drive(clock, lambda: len(calls) >= 2, step=1.0, what=f"{name} to run again")
        assert name in engine.tasks._tasks and not engine.tasks._tasks[name].done()
    finally:
        await finish_with_clock(clock, engine.stop())
        engine.store.close()
