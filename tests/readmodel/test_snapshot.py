import json

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from console.core.records import replace
from console.readmodel.snapshot import EngineView, EventView, HostView, Snapshot, ThingView, compose
from console.readmodel.tray import Level

names = st.text(min_size=1, max_size=8)
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                                        max_size=3), max_leaves=6)
times = st.floats(min_value=0, max_value=4e9, allow_nan=False)
snapshots = st.builds(
    compose,
    now=times,
    host=st.builds(HostView, name=names, state_dir=names, config_path=names, config_present=st.booleans(),
                   configured_count=st.integers(0, 5)),
    engine=st.builds(EngineView, running=st.booleans(), source=st.sampled_from(["owner", "offline"]),
                     pid=st.none() | st.integers(1, 99999), started_at=st.none() | times,
                     last_owner_pid=st.none() | st.integers(1, 9), last_stop_clean=st.none() | st.booleans()),
    things=st.lists(st.builds(ThingView, kind=names, name=names, state=names, reason=names, since=times,
                              detail=st.dictionaries(st.text(max_size=4), json_values, max_size=3)), max_size=4),
    events=st.lists(st.builds(EventView, id=st.integers(1, 10**6), at=times, kind=names, name=names,
                              previous=st.none() | names, new=names, reason=names), max_size=4),
)


@given(snapshots)
def test_snapshot_json_round_trip(snap):
    assert Snapshot.from_json(snap.to_json()) == snap


@given(snapshots)
def test_engine_not_running_always_rolls_up_down(snap):
    assert (snap.tray.state is Level.DOWN) == (not snap.engine.running)


def test_unknown_keys_from_a_newer_owner_are_ignored():
    snap = compose(now=1.0, host=HostView("h", "/s", "/c", False, 0), engine=EngineView(True, "owner", pid=2),
                   things=[], events=[])
    data = json.loads(snap.to_json())
    data["added_later"] = {"x": 1}
    data["engine"]["new_field"] = True
    assert Snapshot.from_dict(data) == snap


async def test_no_thing_appears_twice_in_an_owners_snapshot(tmp_path):
    """Sidecars and loops are in their typed sections only (a sidecar's stored detail repeated in `things`
    was ~1.5 KB each)."""
    import sys

    from console.core.config import HostConfig, LoadedConfig, LoopConfig, SidecarConfig
    from console.core.fake_clock import FakeClock
    from console.core.paths import Paths
    from console.core.store import Store
    from console.host.engine import Engine
    from tests.conftest import drive

    paths = Paths(state_dir=tmp_path / "state", config_path=tmp_path / "loopctl.toml", config_explicit=False)
    paths.state_dir.mkdir()
    clock = FakeClock()
    store = Store.open(paths.database, clock)
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    config = HostConfig(sidecar=[SidecarConfig(name="web", command=sleeper)],
                        loop=[LoopConfig(id="docs", command=["true"], interval_seconds=3600)])
    engine = Engine(paths=paths, loaded=LoadedConfig(config, paths.config_path, True), store=store, clock=clock)
    await engine.start()
    try:
        await drive(clock, lambda: engine.snapshot().sidecars[0].state == "ready", what="the sidecar ready")
        snap = engine.snapshot()
        keys = [t.key for t in snap.things]
        assert "sidecar:web" not in keys and "loop:docs" not in keys and "engine:main" in keys
        assert [s.name for s in snap.sidecars] == ["web"] and [lp.id for lp in snap.loops] == ["docs"]
    finally:
        await engine.stop()
        store.close()


def test_a_snapshot_as_of_a_later_time_counts_its_probation_down_from_the_deadline():
    from console.readmodel.snapshot import EngineView, HostView, RemoteConfigView, compose

    snap = compose(now=1000.0, host=HostView("h", "/s", "/c", True, 0), engine=EngineView(running=True, source="owner"),
                   things=[], events=[], remote_config=RemoteConfigView(state="probation", probation_deadline=1300.0))
    assert snap.remote_config is not None and snap.remote_config.probation_seconds_left == 300.0
    later = snap.at(1250.0)
    assert later.generated_at == 1250.0 and later.remote_config.probation_seconds_left == 50.0
    assert snap.at(2000.0).remote_config.probation_seconds_left == 0.0  # never negative
    assert later.tray == snap.tray and later.sidecars == snap.sidecars


def test_a_snapshot_read_from_disk_carries_sidecars_and_loops_once_too():
    from console.core.things import ThingView
    from console.readmodel.snapshot import EngineView, HostView, compose

    things = [ThingView("sidecar", "web", "ready", "", 1.0, {"port": 80}), ThingView("loop", "docs", "active", "", 1.0),
              ThingView("engine", "main", "stopped", "", 1.0)]
    snap = compose(now=2.0, host=HostView("h", "/s", "/c", True, 2), engine=EngineView(running=False, source="offline"),
                   things=things, events=[])
    assert [s.name for s in snap.sidecars] == ["web"] and [lp.id for lp in snap.loops] == ["docs"]
    assert [t.key for t in snap.things] == ["engine:main"]


def _busy(loops: int, sidecars: int) -> Snapshot:
    """A busy host's snapshot, its values read back as the engine reads them from its database: equal
    to the defaults where they are, but not the same objects (msgspec's omit_defaults missed those)."""
    from console.core.decode import convert
    from console.runs.view import LoopView
    from console.sidecars.view import SidecarView

    now = 1_790_000_000.0
    loop_rows = [{"id": f"loop-{n}", "state": "active", "reason": "scheduling runs", "interval_seconds": 60.0,
                  "run_timeout_seconds": 0.0, "next_run_at": now + n % 60 + 0.123456,
                  "last_run_id": "01KB6Q2T9V8S3X4Y5Z6A7B8C9D", "last_liveness": "advanced",
                  "last_stop_reason": "completed", "last_finished_at": now - 5.654321} for n in range(loops)]
    sidecar_rows = [{"name": f"side-{n}", "state": "ready", "reason_text": f"healthy (tcp), pid {1000 + n}",
                     "pid": 1000 + n, "started_at": now - 60.5, "ready_at": now - 59.5, "port": 20000 + n,
                     "health": "tcp", "command": ["/usr/local/bin/helper", "--port", str(n)]} for n in range(sidecars)]
    return compose(
        now=now, host=HostView("h", "/s", "/c", True, loops + sidecars), engine=EngineView(True, "owner", pid=2),
        things=[], events=[], loops=convert(list[LoopView], json.loads(json.dumps(loop_rows))),
        sidecars=convert(list[SidecarView], json.loads(json.dumps(sidecar_rows))))


def test_a_busy_hosts_snapshot_is_half_of_what_it_was():
    """Issue 19: 442 KB at 1,000 loops and 200 sidecars when each thing came twice; the target is half.
    Each record list is a table (its keys once, a column of defaults left out), and decodes back."""
    snap = _busy(1000, 200)
    encoded = snap.to_json()
    assert len(encoded) <= 442_000 // 2, len(encoded)
    assert Snapshot.from_json(encoded) == snap
    assert Snapshot.from_dict(json.loads(encoded)) == snap
    loops = json.loads(encoded)["loops"]
    assert "held_by" not in loops["columns"] and "state" not in loops["columns"]  # every one at its default
    assert dict(zip(loops["columns"], loops["rows"][0], strict=True))["last_liveness"] == "advanced"


def test_a_schema_1_snapshot_with_lists_of_objects_still_decodes():
    """An owner of the loopctl before tables (a host of the fleet not yet upgraded)."""
    snap = _busy(3, 2)
    old = {**json.loads(snap.to_json()), "schema": 1,
           "loops": [msgspec.to_builtins(lp) for lp in snap.loops],
           "sidecars": [msgspec.to_builtins(sc) for sc in snap.sidecars], "things": [], "events": [], "runs": [],
           "plugins": []}
    assert replace(Snapshot.from_dict(old), schema=2) == snap


def test_the_json_report_keeps_every_key_whatever_the_values():
    from console.core.records import field_names
    from console.readmodel.report import render_json
    from console.runs.view import LoopView
    from console.sidecars.view import SidecarView

    report = json.loads(render_json(_busy(2, 1)))["snapshot"]
    assert set(report["loops"][0]) == set(field_names(LoopView))
    assert set(report["sidecars"][0]) == set(field_names(SidecarView))
    assert report["loops"][0]["held_by"] == "" and report["sidecars"][0]["holder"] is None
