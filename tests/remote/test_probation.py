"""Remote-config decisions, pure: stage results, the probation window, boot outcomes, rollback targets."""

from __future__ import annotations

from console.remote.probation import (
    Bad,
    Boot,
    Marker,
    SlotInfo,
    Stage,
    bad_backoff,
    expire,
    on_boot,
    remember_bad,
    rollback_target,
    stage,
    window,
)

GOOD = SlotInfo("a", '"good"', intact=True)
NEW = SlotInfo("b", '"new"', intact=True)
MARKER = Marker(slot="b", etag='"new"', staged_at=1000.0, deadline=1300.0, previous_slot="a", previous_etag='"good"')


def test_probation_window_is_three_polls_and_never_under_two_minutes():
    assert window(300) == 900
    assert window(5) == 120
    assert window(40) == 120
    assert window(41) == 123


def test_stage_results():
    assert stage('"x"', '"x"', None, 0) is Stage.NOOP_SAME_ETAG
    assert stage('"y"', '"x"', Bad('"y"', 1, until=100.0), 50.0) is Stage.SKIPPED_BAD_ETAG
    assert stage('"y"', '"x"', Bad('"y"', 1, until=100.0), 100.0) is Stage.APPLIED  # backoff over: one more try
    assert stage('"z"', '"x"', Bad('"y"', 1, until=100.0), 50.0) is Stage.APPLIED
    assert stage('"z"', None, None, 0) is Stage.APPLIED


def test_one_bad_etag_is_remembered_with_a_growing_backoff():
    first = remember_bad('"y"', None, 0.0)
    again = remember_bad('"y"', first, 1000.0)
    other = remember_bad('"z"', again, 2000.0)
    assert (first.count, first.until) == (1, bad_backoff(1))
    assert again.count == 2 and again.until == 1000.0 + 2 * bad_backoff(1)
    assert other == Bad('"z"', 1, 2000.0 + bad_backoff(1))  # one remembered: the newest
    assert bad_backoff(30) == 86400.0


def test_boot_with_no_marker_does_nothing():
    assert on_boot(GOOD, None, None, 5000.0).outcome is Boot.NONE


def test_boot_discards_a_marker_whose_flip_never_happened():
    decision = on_boot(GOOD, NEW, MARKER, 1100.0)  # marker says b, pointer still on a
    assert decision.outcome is Boot.CLEARED_ORPHAN and decision.clear_marker and decision.flip_to is None


def test_boot_inside_the_window_keeps_probation_and_after_it_rolls_back():
    assert on_boot(NEW, GOOD, MARKER, 1299.0).outcome is Boot.NONE
    decision = on_boot(NEW, GOOD, MARKER, 1300.0)
    assert (decision.outcome, decision.reason, decision.flip_to) == (Boot.ROLLED_BACK, "probation_expired", "a")


def test_rollback_needs_a_distinct_intact_last_known_good_slot():
    assert expire(NEW, None, MARKER).outcome is Boot.ROLLBACK_NO_TARGET
    assert expire(NEW, SlotInfo("a", '"good"', intact=False), MARKER).outcome is Boot.ROLLBACK_NO_TARGET
    assert expire(NEW, SlotInfo("a", '"new"', intact=True), MARKER).outcome is Boot.ROLLBACK_NO_TARGET
    # The other slot was overwritten since the marker was written: not the last-known-good any more.
    assert expire(NEW, SlotInfo("a", '"else"', intact=True), MARKER).outcome is Boot.ROLLBACK_NO_TARGET
    no_target = expire(NEW, None, MARKER)
    assert no_target.flip_to is None and no_target.clear_marker
    assert rollback_target(NEW, GOOD, MARKER) == "a"


def test_a_torn_active_slot_rolls_back_as_validation_failed():
    torn = SlotInfo("b", '"new"', intact=False)
    decision = on_boot(torn, GOOD, None, 0.0)
    assert (decision.outcome, decision.reason, decision.flip_to) == (Boot.ROLLED_BACK, "validation_failed", "a")


def test_a_torn_active_slot_never_rolls_back_to_its_own_document_in_the_other_slot():
    """No marker to name the last-known-good: only the same-etag guard keeps the rollback off the bad
    document itself (both slots hold it once the same document was applied into each)."""
    torn = SlotInfo("b", '"new"', intact=False)
    decision = on_boot(torn, SlotInfo("a", '"new"', intact=True), None, 0.0)
    assert (decision.outcome, decision.flip_to) == (Boot.ROLLBACK_NO_TARGET, None)


def test_at_boot_on_real_slots_a_torn_document_is_not_rolled_back_onto_itself(tmp_path):
    from console.core.config import ControlPlaneSection, HostConfig
    from console.core.fake_clock import FakeClock
    from console.core.store import Store
    from console.remote.apply import RemoteConfig
    from console.remote.plugins import Plugins
    from console.remote.slots import Slots

    async def never(*_args: object) -> None:
        raise AssertionError("boot fetched something")

    raw = b'{"sidecar": []}'
    slots = Slots(tmp_path / "config")
    for name in ("a", "b"):  # the same document applied into each slot
        slots.write_document(name, raw)
        slots.write_etag(name, '"new"', raw)
    slots.flip("b")
    slots.document_path("b").write_bytes(raw + b" ")  # torn, or edited, after its etag file
    clock = FakeClock(start=1_800_000_000.0)
    store = Store.open(tmp_path / "loopctl.db", clock)
    try:
        local = HostConfig(control_plane=ControlPlaneSection(url="http://127.0.0.1:9", host_id="h"))
        remote = RemoteConfig(tmp_path, local, plugins=Plugins(tmp_path / "plugins", store=store, clock=clock,
                                                               fetch=never), store=store, clock=clock)
        remote.boot()
        assert slots.load_state().last_boot.outcome == "rollback_no_target"
        assert slots.active_name() == "b"
    finally:
        store.close()


def test_a_poll_record_bumps_the_snapshot_though_no_transition_says_so(tmp_path):
    """Without a bump, an owner's cached snapshot showed the poll before the last one ("last poll 91 s
    ago" on a host polling every 5 s)."""
    from console.core.config import ControlPlaneSection, HostConfig
    from console.core.fake_clock import FakeClock
    from console.core.store import Store
    from console.remote.apply import RemoteConfig
    from console.remote.plugins import Plugins
    from console.remote.records import PollRecord

    clock = FakeClock()
    store = Store.open(tmp_path / "loopctl.db", clock)
    local = HostConfig(control_plane=ControlPlaneSection(url="http://127.0.0.1:9", host_id="h_1"))
    bumps: list[int] = []
    remote = RemoteConfig(tmp_path, local, plugins=Plugins(tmp_path / "plugins", store=store, clock=clock,
                                                           fetch=None),  # type: ignore[arg-type]
                          store=store, clock=clock, on_change=lambda: bumps.append(1))
    remote.record_poll(PollRecord(clock.time(), "not_modified", 304), next_poll_at=clock.time() + 5)
    remote.schedule(clock.time() + 10)
    assert len(bumps) == 2
    store.close()
