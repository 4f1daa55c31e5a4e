import asyncio

from console.core.clock import SystemClock
from console.core.fake_clock import FakeClock


async def test_fake_clock_wakes_sleepers_in_deadline_order_without_real_time():
    clock = FakeClock()
    woke: list[str] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(name)

    tasks = [asyncio.create_task(sleeper("late", 30)), asyncio.create_task(sleeper("early", 1))]
    await asyncio.sleep(0)
    assert clock.pending_sleepers == 2
    await clock.advance_and_settle(0.5)
    assert woke == []
    await clock.advance_and_settle(0.5)
    assert woke == ["early"]
    await clock.advance_and_settle(29)
    assert woke == ["early", "late"]
    await asyncio.gather(*tasks)


async def test_fake_clock_moves_wall_and_monotonic_together():
    clock = FakeClock(start=100.0)
    clock.advance(2.5)
    assert clock.time() == 102.5
    assert clock.monotonic() == 2.5


async def test_fake_clock_refuses_to_go_backwards():
    import pytest

    with pytest.raises(ValueError):
        FakeClock().advance(-1)


async def test_system_clock_reads_real_time():
    clock = SystemClock()
    before = clock.monotonic()
    await clock.sleep(0)
    assert clock.monotonic() >= before
    assert clock.time() > 1_700_000_000
