"""The selected thing's own last transitions are read again only when a push brings new ones about it."""

from __future__ import annotations

from console.core.fake_clock import FakeClock
from console.core.records import replace
from console.readmodel.snapshot import EventView
from console.tui.app import LoopctlApp
from console.tui.event_history import grown_histories
from console.tui.scenario import NOW, scenario_snapshot
from console.tui.source import FixedSource
from tests.tui.conftest import select


def event(i: int, kind: str = "loop", name: str = "docs") -> EventView:
    return EventView(i, NOW + i, kind, name, "active", "active", "heartbeat")


def test_the_things_whose_transitions_grew():
    before = [event(3), event(2, "sidecar", "web")]
    assert grown_histories(None, before) is None  # nothing seen before: any
    assert grown_histories(before, before) == set()
    assert grown_histories(before, [event(5, "sidecar", "web"), event(4), event(3)]) == {"loop:docs", "sidecar:web"}
    assert grown_histories(before, [event(9), event(8)]) is None  # 4 to 7 never seen: any may have grown


async def test_a_push_without_new_events_about_the_selection_reads_nothing(tmp_path):
    snap = scenario_snapshot()
    source = FixedSource(snap)
    reads: list[tuple[str | None, str | None]] = []
    real = source.events

    async def counted(kind=None, name=None, **kwargs):
        reads.append((kind, name))
        return await real(kind, name, **kwargs)

    source.events = counted  # type: ignore[method-assign]
    app = LoopctlApp(source, paths=None, clock=FakeClock(start=NOW))
    async with app.run_test(size=(120, 40)) as pilot:
        await select(pilot, app, "2", "sidecar:embeddings")
        await pilot.pause()
        assert reads.count(("sidecar", "embeddings")) == 1
        head = max(e.id for e in snap.events)
        quiet = replace(snap, generated_at=NOW + 1)  # a push: no new event at all
        app.show_snapshot(quiet)
        await pilot.pause()
        other = replace(snap, generated_at=NOW + 2, events=[event(head + 1, "loop", "docs"), *snap.events])
        app.show_snapshot(other)  # a new event, about another thing
        await pilot.pause()
        assert reads.count(("sidecar", "embeddings")) == 1
        about = replace(other, generated_at=NOW + 3,
                        events=[event(head + 2, "sidecar", "embeddings"), *other.events])
        app.show_snapshot(about)  # one about the selected sidecar: read again
        for _ in range(20):
            await pilot.pause()
            if reads.count(("sidecar", "embeddings")) == 2:
                break
        assert reads.count(("sidecar", "embeddings")) == 2
