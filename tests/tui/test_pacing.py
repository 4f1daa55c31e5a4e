"""The feed's pushes are drawn four a second at most, the latest of them, and at once on a quiet host."""

from __future__ import annotations

import asyncio
import time

from console.core.fake_clock import FakeClock
from console.core.records import replace
from console.tui.app import LoopctlApp
from console.tui.pacing import SPACING, Pacer
from console.tui.scenario import NOW, scenario_snapshot
from console.tui.source import FixedSource


async def test_the_pacer_hands_on_the_latest_at_most_once_per_spacing_and_at_once_after_quiet():
    got: list[int] = []
    pacer: Pacer[int] = Pacer(got.append, spacing=0.1)
    pacer(0)
    assert got == [0]  # nothing drawn lately: at once
    for i in range(1, 30):  # a burst, 300 a second
        pacer(i)
        await asyncio.sleep(0.003)
    await asyncio.sleep(0.15)
    assert got[-1] == 29  # the latest, never a queue of old ones
    assert len(got) <= 1 + 0.09 / 0.1 + 2 and got == sorted(got)
    await asyncio.sleep(0.15)
    pacer(30)
    assert got[-1] == 30  # quiet again: at once, not a spacing later
    pacer(31)
    pacer.cancel()  # teardown: what was held is dropped
    await asyncio.sleep(0.15)
    assert got[-1] == 30


class BurstSource(FixedSource):
    """A host whose engine pushes 40 versions in 0.4 s (a 1,000-loop burst pushes about eight a second)."""

    def __init__(self) -> None:
        super().__init__(scenario_snapshot())
        self.pushed = [replace(self.snapshot, generated_at=NOW + i) for i in range(1, 41)]
        self.took = 0.0  # the burst's real length: 0.4 s asked, longer on a loaded machine

    async def follow(self, sink):
        sink(self.snapshot)
        start = time.monotonic()
        for snap in self.pushed:
            await asyncio.sleep(0.01)
            sink(snap)
        self.took = time.monotonic() - start
        await asyncio.Event().wait()


async def test_a_burst_of_pushes_is_drawn_a_few_times_ending_on_the_latest():
    source = BurstSource()
    app = LoopctlApp(source, paths=None, clock=FakeClock(start=NOW))
    shown: list[float] = []
    real = app.show_snapshot

    def counting(snap):
        shown.append(snap.generated_at)
        real(snap)

    app.show_snapshot = counting  # type: ignore[method-assign]
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(100):
            if app.snapshot is source.pushed[-1]:
                break
            await pilot.pause(0.05)
        assert app.snapshot is source.pushed[-1]  # the last push is on screen
        renders = [at for at in shown if at > NOW]
        assert 1 <= len(renders) <= max(0.4, source.took) / SPACING + 3, (source.took, renders)  # not 40


async def test_a_push_held_never_lands_over_a_snapshot_shown_since():
    """The owner gone: the console shows the last recorded state; the engine's last push, still held by
    the pacer, must not come down over it a moment later (the tray said OK of a stopped host)."""
    snap = scenario_snapshot()
    app = LoopctlApp(FixedSource(snap), paths=None, clock=FakeClock(start=NOW))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        late, offline = replace(snap, generated_at=NOW + 1), replace(snap, generated_at=NOW + 2)
        app._pacer(replace(snap, generated_at=NOW + 0.5))
        app._pacer(late)  # within the spacing: held
        app.show_snapshot(offline)
        await pilot.pause(SPACING * 2)
        assert app.snapshot is offline


async def test_flush_hands_on_what_is_held_now_and_expedite_lets_the_next_through_at_once():
    got: list[int] = []
    pacer: Pacer[int] = Pacer(got.append, spacing=60.0)
    pacer(0)
    pacer(1)  # held: the spacing is a minute
    assert got == [0] and pacer.flush() and got == [0, 1]
    assert not pacer.flush()  # nothing held: nothing handed on
    pacer(2)
    pacer.expedite()  # an operator acted: what is held goes now, and the next too
    pacer(3)
    assert got == [0, 1, 2, 3]
    pacer(4)  # then paced again
    assert got == [0, 1, 2, 3]
    pacer.cancel()


async def test_the_tick_draws_a_held_push_in_its_own_frame():
    snap = scenario_snapshot()
    clock = FakeClock(start=NOW)
    app = LoopctlApp(FixedSource(snap), paths=None, clock=clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        app._pacer._last = frozen = app._pacer._now()  # as if it had just drawn, and no time passes since,
        app._pacer._now = lambda: frozen  # however loaded the machine
        held = replace(snap, generated_at=NOW + 0.7)
        app._pacer(held)  # within the spacing of the feed's first push: held
        assert app.snapshot is not held
        clock.advance(1.0)
        app._tick()
        assert app.snapshot is held  # the tick drew it, not a timer up to a second later


async def test_the_outcome_of_an_operators_action_is_drawn_as_it_comes():
    snap = scenario_snapshot()

    async def handler(verb: str, target: str) -> dict[str, object]:
        return {"message": f"{verb} {target}: done"}

    app = LoopctlApp(FixedSource(snap, handler=handler), paths=None, clock=FakeClock(start=NOW))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        app._pacer._last = frozen = app._pacer._now()  # as if it had just drawn, and no time passes since:
        app._pacer._now = lambda: frozen  # only the action lets the next one through
        await app._perform("trigger", "loop:docs")
        outcome = replace(snap, generated_at=NOW + 0.3)
        app._pacer(outcome)  # within the spacing of the feed's first push, but after an action
        assert app.snapshot is outcome
