"""The selected thing's own last transitions are read again only when a push brings new ones about it."""

from __future__ import annotations

from rich.console import Group
from textual.widgets import Static

from console.core.fake_clock import FakeClock
from console.core.records import replace
from console.readmodel.snapshot import EventView
from console.tui.app import HISTORY_AGAIN, LoopctlApp
from console.tui.event_history import PAGE, grown_histories
from console.tui.scenario import NOW, scenario_snapshot
from console.tui.source import FixedSource
from console.tui.widgets.detail_pane import DetailPane
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


async def test_pushes_that_skip_events_read_the_selection_again_every_few_seconds_not_per_push(tmp_path):
    """A burst: each push carries 50 events none of which were seen, so any may be about the selection.
    Its history is read again once HISTORY_AGAIN is up, not on each push (a round trip and the detail
    drawn twice each, four times a second), and the one read before stays on screen meanwhile."""
    snap = scenario_snapshot()
    source = FixedSource(snap)
    reads: list[tuple[str | None, str | None]] = []
    real = source.events

    async def counted(kind=None, name=None, **kwargs):
        reads.append((kind, name))
        return await real(kind, name, **kwargs)

    source.events = counted  # type: ignore[method-assign]
    clock = FakeClock(start=NOW)
    app = LoopctlApp(source, paths=None, clock=clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await select(pilot, app, "2", "sidecar:embeddings")
        await pilot.pause()
        assert reads.count(("sidecar", "embeddings")) == 1
        pane = app.query_one(DetailPane)
        head = max(e.id for e in snap.events)
        pushes = round(HISTORY_AGAIN / 0.25)
        for i in range(1, pushes + 1):
            clock.advance(0.25)
            burst = [event(head + 100 * i + k) for k in range(50, 0, -1)]  # newest first, 50 unseen
            app.show_snapshot(replace(snap, generated_at=clock.time(), events=burst))
            await pilot.pause()
            body = pane.query_one("#detail-body", Static).content
            assert isinstance(body, Group) and any(getattr(r, "plain", "") == "last transitions"
                                                   for r in body.renderables), i
            if i < pushes:
                assert reads.count(("sidecar", "embeddings")) == 1, i
        for _ in range(20):
            await pilot.pause()
            if reads.count(("sidecar", "embeddings")) == 2:
                break
        assert reads.count(("sidecar", "embeddings")) == 2


async def test_the_events_tab_out_of_sight_reads_its_pages_again_only_when_shown(tmp_path):
    snap = scenario_snapshot()
    source = FixedSource(snap)
    pages: list[int | None] = []
    real = source.events

    async def counted(kind=None, name=None, **kwargs):
        if kwargs.get("limit") == PAGE:
            pages.append(kwargs.get("before"))
        return await real(kind, name, **kwargs)

    source.events = counted  # type: ignore[method-assign]
    clock = FakeClock(start=NOW)
    app = LoopctlApp(source, paths=None, clock=clock)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("6")
        await pilot.pause()
        assert pages == [None]  # its first page
        await pilot.press("3")
        head = max(e.id for e in snap.events)
        for i in range(1, 5):  # pushes that skipped events: the pages are behind
            burst = [event(head + 100 * i + k) for k in range(50, 0, -1)]
            app.show_snapshot(replace(snap, generated_at=NOW + i, events=burst))
            await pilot.pause()
        assert pages == [None]  # nothing read while out of sight
        await pilot.press("6")
        for _ in range(20):
            await pilot.pause()
            if len(pages) == 2:
                break
        assert pages == [None, None]  # read afresh, once, as it shows
