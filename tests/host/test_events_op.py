"""The `events` socket op: the whole event log in pages, filtered by kind, thing and time."""

from __future__ import annotations

import pytest

from console.host.watch import arequest
from tests.host.test_server import served  # noqa: F401  (a fixture)


async def test_pages_walk_the_whole_log_newest_first_each_event_once(served):  # noqa: F811
    engine, _server, paths = served
    for i in range(120):
        engine.store.transition("sidecar", f"s{i % 3}", "ready" if i % 2 else "starting", f"step {i}")
    total = len(engine.store.events_page(limit=10_000))
    seen, before = [], None
    while True:
        answer = await arequest(paths.socket, "events", limit=50, **({"before": before} if before else {}))
        assert answer["ok"] and len(answer["events"]) <= 50
        seen += [event["id"] for event in answer["events"]]
        before = answer["next"]
        if before is None:
            break
    assert seen == sorted(seen, reverse=True) and len(seen) == len(set(seen)) == total > 120


async def test_filters_by_kind_thing_and_time(served):  # noqa: F811
    engine, _server, paths = served
    engine.store.transition("sidecar", "web", "starting", "launch")
    engine.clock.advance(100)
    middle = engine.clock.time()
    engine.store.transition("sidecar", "web", "ready", "healthy")
    engine.store.transition("sidecar", "db", "ready", "healthy")
    engine.clock.advance(100)
    engine.store.transition("sidecar", "web", "backoff", "exited")
    web = await arequest(paths.socket, "events", kind="sidecar", name="web")
    assert [e["new"] for e in web["events"]] == ["backoff", "ready", "starting"] and web["next"] is None
    window = await arequest(paths.socket, "events", kind="sidecar", since=middle, until=middle + 50)
    assert [(e["name"], e["new"]) for e in window["events"]] == [("db", "ready"), ("web", "ready")]
    engines = await arequest(paths.socket, "events", kind="engine")
    assert {e["kind"] for e in engines["events"]} == {"engine"}


@pytest.mark.parametrize("bad", [{"kind": 3}, {"since": "yesterday"}, {"before": 1.5}, {"limit": True}])
async def test_a_wrong_filter_is_a_bad_request_naming_it(served, bad):  # noqa: F811
    _engine, _server, paths = served
    answer = await arequest(paths.socket, "events", **bad)
    assert answer["ok"] is False and answer["error"]["code"] == "bad_request"
    assert next(iter(bad)) in answer["error"]["message"]
