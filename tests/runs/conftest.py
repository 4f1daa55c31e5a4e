"""The rig every runs test drives: a fake clock, a real store, real child processes; the loops it made are
stopped (their children with them) when the test ends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from console.core.fake_clock import FakeClock
from console.core.store import Store
from tests.conftest import finish_with_clock
from tests.runs.test_scheduler import Rig


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    clock = FakeClock()
    store = Store.open(tmp_path / "loopctl.db", clock)
    made = Rig(tmp_path, clock, store)
    yield made
    for component in made.made:
        await finish_with_clock(clock, component.stop())
    store.close()
