"""What the parts of the loop scheduler share: `Loops` is scheduling (scheduler.py), settling each
outcome (settling.py), reaping what a dead engine left (reaping.py) and the run verbs (run_verbs.py),
one object in four modules. This base names the state they all read and the calls they make across
modules, so each part type-checks on its own."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from console.core.clock import Clock
from console.core.config import LoopConfig
from console.core.holds import Holds
from console.core.store import Store
from console.core.tasks import Tasks
from console.runs.executor import Observed, RunExecutor
from console.runs.ledger import RunIds, RunRecord
from console.runs.liveness import LIVENESS_REASON_MAX
from console.runs.loop_states import LoopEvent, after, loop_state

if TYPE_CHECKING:
    from console.runs.scheduler import LoopRunner

LOOP_KIND = "loop"
MAX_PROCESS_LOSS_RETRIES = 1


def move_loop(store: Store, loop_id: str, event: LoopEvent, reason: str) -> bool:
    """The one way a loop's state changes: as `loop_states.after` allows (True when it did)."""
    thing = store.thing(LOOP_KIND, loop_id)
    new = after(loop_state(thing.state if thing else None), event)
    if new is None:
        return False
    store.transition(LOOP_KIND, loop_id, new.value, reason)
    return True


def clip(text: str) -> str:
    return text if len(text) <= LIVENESS_REASON_MAX else text[: LIVENESS_REASON_MAX - 1] + "…"


class LoopsState:
    store: Store
    tasks: Tasks
    holds: Holds
    clock: Clock
    runs_root: Path
    on_change: Callable[[], None]
    ids: RunIds
    executor: RunExecutor
    configs: dict[str, LoopConfig]
    runners: dict[str, LoopRunner]
    detached: dict[str, asyncio.Task[None]]
    detached_cancel: dict[str, str]
    finished: dict[str, asyncio.Event]
    found_running: dict[str, bool]

    # Implemented by one part, called by another.
    def settle(self, run: RunRecord, observed: Observed, cfg: LoopConfig) -> bool:
        raise NotImplementedError

    def _mark_finished(self, run_id: str) -> None:
        raise NotImplementedError

    async def _await_finished(self, run_id: str, timeout: float) -> None:
        raise NotImplementedError

    async def _cancel_adopted(self, run_id: str, reason: str) -> bool:
        raise NotImplementedError

    def current_run(self, loop_id: str) -> str | None:
        raise NotImplementedError
