"""The pull loop and the apply engine against the reference control plane (real HTTP on loopback).

Each poll is driven by hand (`poll_once`), time by the fake clock; the restart callback records what
the engine would restart. The hostile-server cases each end in a recorded error with the running
config untouched."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import sys
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from console.controlplane.artifacts import ArtifactFetcher
from console.controlplane.client import ControlPlaneClient
from console.controlplane.config_pull import ConfigPuller
from console.core.config import ControlPlaneSection, HostConfig
from console.core.fake_clock import FakeClock
from console.core.store import Store
from console.remote.apply import KIND, NAME, RemoteConfig
from console.remote.plugins import Plugins, installed
from console.remote.slots import Slots
from tests.conftest import finish_with_clock, make_artifact
from tests.controlplane.conftest import admin

TOOL = b"#!/bin/sh\nexec sleep 300\n"


def sidecar(name: str = "web", port: int = 0, **extra) -> dict:
    return {"name": name, "command": [sys.executable, "-c", "import time; time.sleep(300)"], "port": port, **extra}


@dataclass
class Rig:
    plane: str
    host_id: str
    root: Path
    clock: FakeClock
    store: Store
    remote: RemoteConfig
    puller: ConfigPuller
    restarts: list

    def serve(self, document: dict | None = None, **how) -> str:
        return admin(self.plane, "set-config", host_id=self.host_id, document=document, **how)["etag"]

    async def poll(self) -> float:
        return await self.puller.poll_once()

    @property
    def slots(self) -> Slots:
        return self.remote.slots

    def active_files(self) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in sorted(self.slots.directory.glob("slot-*"))}

    def thing(self) -> str:
        return self.store.thing(KIND, NAME).state

    def publish(self, name: str, data: bytes) -> dict:
        return admin(self.plane, "publish", name=name, content_b64=base64.b64encode(data).decode())


async def make_rig(plane: str, root: Path, *, deadline: float = 30.0) -> Rig:
    client = ControlPlaneClient(plane, Ed25519PrivateKey.generate())
    joined = await client.join(admin(plane, "join-tokens")["join_token"], "edge-rc")
    host_id = joined.record.host_id
    clock = FakeClock(start=1_800_000_000.0)
    store = Store.open(root / "loopctl.db", clock)
    local = HostConfig(control_plane=ControlPlaneSection(url=plane, host_id=host_id, poll_interval_seconds=60))
    plugins = Plugins(root / "plugins", store=store, clock=clock, fetch=ArtifactFetcher(deadline=10))
    remote = RemoteConfig(root, local, plugins=plugins, store=store, clock=clock)
    restarts: list = []

    async def restart(config: HostConfig, code_changed: bool) -> None:
        restarts.append((config, code_changed))

    remote.restart = restart
    remote.boot()
    await remote.start()
    puller = ConfigPuller(client, host_id, remote, clock, deadline=deadline)
    return Rig(plane, host_id, root, clock, store, remote, puller, restarts)


@pytest.fixture
async def rig(plane, tmp_path):
    r = await make_rig(plane, tmp_path)
    yield r
    await finish_with_clock(r.clock, r.puller.stop())
    await r.remote.stop()
    await r.puller.client.close()
    await r.remote.plugins.fetch.aclose()  # type: ignore[union-attr]
    r.store.close()


async def test_no_remote_config_is_a_quiet_legacy_backoff(rig):
    first, second = await rig.poll(), await rig.poll()
    assert (first, second) == (60, 120)
    assert rig.remote.state.last_poll.result == "no_remote_config"
    assert rig.remote.running_etag is None and rig.restarts == []


async def test_apply_flips_the_inactive_slot_then_the_next_successful_poll_clears_probation(rig):
    etag = rig.serve({"poll_interval_seconds": 60, "sidecar": [sidecar()]})
    await rig.poll()
    assert rig.remote.state.last_apply.result == "applied"
    assert (rig.remote.running_etag, rig.remote.active_slot, rig.slots.active_name()) == (etag, "a", "a")
    info, raw = rig.slots.read("a")
    assert info.intact and info.etag == etag and json.loads(raw)["sidecar"][0]["name"] == "web"
    marker = rig.remote.state.marker
    assert marker.etag == etag and marker.deadline == rig.clock.time() + 180  # max(3 x 60, 120)
    assert rig.thing() == "probation"
    [(config, code_changed)] = rig.restarts
    assert [s.name for s in config.sidecar] == ["web"] and not code_changed
    view = rig.remote.view()
    assert view.probation_deadline == marker.deadline and view.running_etag == etag

    rig.clock.advance(60)
    await rig.poll()  # If-None-Match carries the running etag: 304
    assert rig.remote.state.last_poll.result == "not_modified"
    assert rig.remote.state.marker is None and rig.thing() == "active"
    assert len(rig.restarts) == 1


async def test_a_served_document_equal_to_the_running_one_is_a_noop(rig):
    etag = rig.serve({"sidecar": [sidecar()]})
    await rig.poll()
    assert await rig.remote.offer(etag, b"ignored: same etag") == "noop_same_etag"
    assert len(rig.restarts) == 1


async def test_validation_errors_name_the_key_and_leave_the_running_config(rig):
    good = rig.serve({"sidecar": [sidecar()]})
    await rig.poll()
    await rig.poll()
    before = rig.active_files()
    bad = rig.serve({"sidecar": [sidecar(port="http")]})
    await rig.poll()
    apply = rig.remote.state.last_apply
    assert (apply.etag, apply.result) == (bad, "config_invalid")
    assert "sidecar[0].port: expected an integer, got 'http'" in apply.detail
    assert rig.remote.running_etag == good and rig.active_files() == before and len(rig.restarts) == 1
    assert rig.remote.state.bad.etag == bad and rig.thing() == "rejected"
    # The server still serves it: If-None-Match is the running etag, so a 200 comes, and it is skipped.
    await rig.poll()
    assert rig.remote.state.last_apply.result == "skipped_bad_etag"
    # Cross-entry rules are full validation: they name the key too.
    dup = rig.serve({"sidecar": [sidecar(port=4100), sidecar("api", port=4100)]})
    await rig.poll()
    assert rig.remote.state.last_apply.etag == dup
    assert "sidecar[1].port: 4100 is already used by sidecar 'web'" in rig.remote.state.last_apply.detail
    # Fixed on the server (it serves the running document again): the flag clears.
    admin(rig.plane, "set-config", host_id=rig.host_id, document={"sidecar": [sidecar()]})
    await rig.poll()
    assert rig.thing() == "active" and rig.remote.running_etag == good


async def test_probation_expiry_rolls_back_to_the_last_known_good_and_remembers_the_bad_etag(rig):
    good = rig.serve({"poll_interval_seconds": 60, "sidecar": [sidecar()]})
    await rig.poll()
    await rig.poll()  # proven
    bad = rig.serve({"poll_interval_seconds": 60, "sidecar": [sidecar("other")]})
    await rig.poll()
    assert rig.remote.running_etag == bad and rig.slots.active_name() == "b"
    admin(rig.plane, "faults", prefix=f"/v1/hosts/{rig.host_id}/config", status=503, times=3)
    for _ in range(3):
        rig.clock.advance(60)
        await rig.poll()
        assert rig.remote.state.last_poll.result == "rate_limited"
    for _ in range(50):  # the probation watcher runs on the fake clock
        await asyncio.sleep(0.01)
        if rig.remote.state.marker is None:
            break
    rb = rig.remote.state.last_rollback
    assert (rb.etag, rb.reason, rb.outcome, rb.to_etag) == (bad, "probation_expired", "rolled_back", good)
    assert rig.slots.active_name() == "a" and rig.remote.running_etag == good
    assert rig.remote.state.bad.etag == bad and rig.thing() == "rolled_back"
    assert [s.name for s in rig.restarts[-1][0].sidecar] == ["web"]
    rig.clock.advance(60)
    await rig.poll()  # the bad one is still served
    assert rig.remote.state.last_apply.result == "skipped_bad_etag"
    assert rig.remote.running_etag == good != rig.remote.state.bad.etag
    # After its backoff it is tried once more; a fixed document applies at once.
    fixed = rig.serve({"poll_interval_seconds": 60, "sidecar": [sidecar("fixed")]})
    await rig.poll()
    assert rig.remote.running_etag == fixed and rig.slots.active_name() == "b"


async def test_a_first_apply_that_expires_has_no_target_and_no_restart(rig):
    etag = rig.serve({"sidecar": [sidecar()]})
    await rig.poll()
    restarts = len(rig.restarts)
    rig.clock.advance(901)  # the document's own interval (default 300) sets the window
    for _ in range(50):
        await asyncio.sleep(0.01)
        if rig.remote.state.marker is None:
            break
    rb = rig.remote.state.last_rollback
    assert (rb.outcome, rb.reason) == ("rollback_no_target", "probation_expired")
    assert rig.remote.running_etag == etag and len(rig.restarts) == restarts
    assert rig.remote.state.bad is None  # the active etag is never the bad one
    assert rig.thing() == "unproven"


async def test_a_config_naming_a_plugin_not_yet_installed_applies(rig):
    art = make_artifact({"bin/tool": TOOL, "plugin.json": b'{"name": "tool", "version": "1.0"}'})
    url = rig.publish("tool-1.0.tgz", art)["url"]
    doc = {"plugin": [{"name": "tool", "version": "1.0", "source": url,
                       "artifact_hash": "sha256:" + hashlib.sha256(art).hexdigest()}],
           "sidecar": [{"name": "svc", "command": ["bin/tool"], "plugin": "tool"}]}
    etag = rig.serve(doc)
    await rig.poll()
    assert rig.remote.state.last_apply.result == "applied", rig.remote.state.last_apply
    assert rig.remote.running_etag == etag
    assert [(i.name, i.version) for i in installed(rig.root / "plugins")] == [("tool", "1.0")]
    config, code_changed = rig.restarts[-1]
    assert code_changed and config.sidecar[0].cwd == str(rig.root / "plugins" / "tool" / "1.0")


async def test_a_plugin_whose_hash_does_not_match_rejects_the_document_and_installs_nothing(rig):
    url = rig.publish("t.tgz", make_artifact({"bin/tool": TOOL}))["url"]
    etag = rig.serve({"plugin": [{"name": "tool", "version": "1.0", "source": url, "artifact_hash": "f" * 64}]})
    await rig.poll()
    assert (rig.remote.state.last_apply.etag, rig.remote.state.last_apply.result) == (etag, "artifact_hash_mismatch")
    assert installed(rig.root / "plugins") == [] and rig.remote.running_etag is None


# -- hostile server ---------------------------------------------------------------------------------------


async def untouched_after(rig: Rig, **how) -> tuple[str, str]:
    """Apply a good document, serve a hostile one, poll: (poll result, detail); the running config stays."""
    good = rig.serve({"sidecar": [sidecar()]})
    await rig.poll()
    before = (rig.active_files(), rig.remote.running_etag, len(rig.restarts))
    admin(rig.plane, "set-config", host_id=rig.host_id, **how)
    await rig.poll()
    assert (rig.active_files(), rig.remote.running_etag, len(rig.restarts)) == before
    assert rig.remote.running_etag == good
    poll = rig.remote.state.last_poll
    return poll.result, poll.detail


async def test_hostile_oversize_by_content_length(rig):
    result, detail = await untouched_after(rig, raw=json.dumps({"pad": "x" * (1 << 20)}))
    assert result == "document_too_large" and "Content-Length" in detail
    assert rig.remote.state.last_apply.result == "document_too_large"


async def test_hostile_oversize_chunked(rig):
    result, detail = await untouched_after(rig, raw=json.dumps({"pad": "x" * (3 << 20)}), chunked=True)
    assert result == "document_too_large" and "larger than 1048576 bytes" in detail


async def test_hostile_gzip_bomb_is_refused_within_the_cap(rig):
    tracemalloc.start()
    try:
        result, detail = await untouched_after(rig, raw="{}", bomb_bytes=256 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result == "document_too_large" and "larger than 1048576 bytes" in detail
    assert peak < 24 << 20, f"inflating the bomb peaked at {peak} bytes"


async def test_hostile_invalid_json(rig):
    result, _detail = await untouched_after(rig, raw="{not json")
    assert result == "ok"  # the poll itself went fine; the document did not
    apply = rig.remote.state.last_apply
    assert apply.result == "config_invalid" and "invalid JSON" in apply.detail


async def test_hostile_garbage_retry_after_falls_back_to_linear_backoff(rig):
    admin(rig.plane, "faults", prefix=f"/v1/hosts/{rig.host_id}/config", status=503, retry_after="whenever", times=2)
    assert [await rig.poll(), await rig.poll()] == [30, 60]
    assert rig.remote.state.last_poll.result == "rate_limited"
    admin(rig.plane, "faults", prefix=f"/v1/hosts/{rig.host_id}/config", status=429, retry_after="7", times=1)
    assert await rig.poll() == 7


async def test_hostile_401_loop_refreshes_once_per_poll_and_records_it(rig):
    gets = admin(rig.plane, "config-gets")["config_gets"]
    admin(rig.plane, "faults", prefix=f"/v1/hosts/{rig.host_id}/config", status=401, times=6)
    delays = [await rig.poll() for _ in range(3)]
    assert admin(rig.plane, "config-gets")["config_gets"] == gets  # the fault answers before the endpoint
    poll = rig.remote.state.last_poll
    assert (poll.result, poll.status) == ("unauthorized", 401) and "refreshed once" in poll.detail
    assert delays == [30, 60, 60]
    assert rig.remote.running_etag is None


async def test_hostile_body_stalling_past_the_deadline_is_cancelled(rig):
    good = rig.serve({"sidecar": [sidecar()]})
    await rig.poll()
    admin(rig.plane, "set-config", host_id=rig.host_id, document={"sidecar": [sidecar("x")]},
          stall_after_bytes=5, stall_seconds=20)
    polling = asyncio.ensure_future(rig.poll())
    await asyncio.sleep(0.3)  # the response has started and stalls
    assert not polling.done()
    rig.clock.advance(30)
    await asyncio.wait_for(polling, 5)  # cancelled on the deadline, not after the server's 20 s
    poll = rig.remote.state.last_poll
    assert poll.result == "timed_out" and "request cancelled" in poll.detail
    assert rig.remote.running_etag == good


async def test_stopping_gives_an_in_flight_poll_one_second_then_cancels_it(plane, tmp_path):
    r = await make_rig(plane, tmp_path)
    try:
        r.serve({"sidecar": [sidecar()]}, stall_after_bytes=5, stall_seconds=20)
        r.puller.start()
        await asyncio.sleep(0.3)
        assert r.puller._inflight is not None and not r.puller._inflight.done()
        stopping = asyncio.ensure_future(r.puller.stop())
        await asyncio.sleep(0.05)
        assert not stopping.done()  # the grace runs on the clock
        r.clock.advance(1.0)
        await asyncio.wait_for(stopping, 5)
        assert r.remote.running_etag is None
    finally:
        await r.remote.stop()
        await r.puller.client.close()
        r.store.close()
