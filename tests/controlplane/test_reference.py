"""The reference control plane and the client, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import time

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from console.controlplane.answers import HostBeat, LoopBeat
from console.controlplane.classify import Outcome, Provenance, Why
from console.controlplane.client import ControlPlaneClient
from console.controlplane.dpop import make_proof
from tests.conftest import free_port
from tests.controlplane.conftest import admin

ALIVE = Provenance(managed=True, runner_alive=True, key_available=True)


@pytest.fixture
async def joined(plane):
    client = ControlPlaneClient(plane, Ed25519PrivateKey.generate())
    answer = await client.join(admin(plane, "join-tokens")["join_token"], "edge-1")
    assert answer.status == 201
    yield client, answer.record.host_id
    await client.close()


async def test_join_then_the_first_heartbeat_brings_the_host_online(plane, joined):
    client, host_id = joined
    first = await client.host_heartbeat(host_id)
    assert first.status == 200 and first.record == HostBeat("online", "provisioning")
    second = await client.host_heartbeat(host_id)
    assert second.record == HostBeat("online", "online")


async def test_a_join_token_works_once(plane):
    token = admin(plane, "join-tokens")["join_token"]
    client = ControlPlaneClient(plane, Ed25519PrivateKey.generate())
    assert (await client.join(token, "a")).status == 201
    assert (await client.join(token, "b")).status == 401
    await client.close()


async def test_a_rejected_access_token_is_refreshed_once(joined):
    client, host_id = joined
    client._access = ("at_forged", time.time() + 3600)
    answer = await client.host_heartbeat(host_id)
    assert answer.status == 200 and client._access[0] != "at_forged"


async def test_managed_alive_and_401_is_revived_with_a_new_token(plane, joined):
    client, _host = joined
    grant = (await client.create_loop("docs")).record
    live = await client.loop_heartbeat(grant.loop_id, grant.runner_token, "run-1", "running")
    assert live.verdict(ALIVE).outcome is Outcome.LIVE and live.record == LoopBeat("active")
    admin(plane, "expire-token", loop_id=grant.loop_id)
    stale = await client.loop_heartbeat(grant.loop_id, grant.runner_token, "run-1", "running")
    assert stale.verdict(ALIVE).outcome is Outcome.POP_FALLBACK
    revived = await client.revive_loop(grant.loop_id, "run-1", "running")
    assert revived.status == 200 and revived.record.revived is True
    assert revived.record.runner_token != grant.runner_token and revived.record.expires_at > time.time()
    again = await client.loop_heartbeat(grant.loop_id, revived.record.runner_token, "run-1", "running")
    assert again.verdict(ALIVE).outcome is Outcome.LIVE


@pytest.mark.parametrize(
    ("provenance", "outcome"),
    [(Provenance(managed=False, runner_alive=True, key_available=True), Outcome.TERMINAL),  # a user's token
     (Provenance(managed=True, runner_alive=False, key_available=True), Outcome.TERMINAL),  # dead runner
     (None, Outcome.TERMINAL)],
)
async def test_401_without_a_live_managed_runner_is_terminal(plane, joined, provenance, outcome):
    client, _host = joined
    grant = (await client.create_loop("docs")).record
    admin(plane, "expire-token", loop_id=grant.loop_id)
    answer = await client.loop_heartbeat(grant.loop_id, grant.runner_token, None, "idle")
    verdict = answer.verdict(provenance)
    assert (verdict.outcome, verdict.why) == (outcome, Why.UNAUTHORIZED)


@pytest.mark.parametrize(("call", "status", "why"), [("gone", 410, Why.GONE), ("delete", 404, Why.NOT_FOUND)])
async def test_a_retired_loop_is_terminal_during_revival(plane, joined, call, status, why):
    client, _host = joined
    grant = (await client.create_loop("docs")).record
    admin(plane, call, loop_id=grant.loop_id)
    answer = await client.revive_loop(grant.loop_id, None, "idle")
    assert answer.status == status and answer.verdict(ALIVE).outcome is Outcome.TERMINAL
    assert answer.verdict(ALIVE).why is why


@pytest.mark.parametrize("what", ["pause", "time-out"])
async def test_the_control_plane_can_pause_or_time_out_a_loop(plane, joined, what):
    client, _host = joined
    grant = (await client.create_loop("docs")).record
    admin(plane, what, loop_id=grant.loop_id)
    answer = await client.loop_heartbeat(grant.loop_id, grant.runner_token, None, "idle")
    assert answer.record.status == {"pause": "paused", "time-out": "timed_out"}[what]


@pytest.mark.parametrize(("status", "retry_after"), [(503, "7"), (500, None), (429, "Wed, 21 Oct 2026 07:28:00 GMT")])
async def test_server_errors_during_revival_keep_the_loop_attached(plane, joined, status, retry_after):
    client, _host = joined
    grant = (await client.create_loop("docs")).record
    admin(plane, "faults", prefix=f"/v1/loops/{grant.loop_id}", status=status, retry_after=retry_after)
    answer = await client.revive_loop(grant.loop_id, None, "idle")
    assert answer.status == status and answer.retry_after == retry_after
    assert (answer.verdict(ALIVE).outcome, answer.verdict(ALIVE).why) == (Outcome.TRANSIENT, Why.SERVER_ERROR)


async def test_a_stall_past_the_deadline_is_transient(plane, joined):
    client, _host = joined
    grant = (await client.create_loop("docs")).record
    admin(plane, "faults", prefix=f"/v1/loops/{grant.loop_id}", stall_seconds=3)
    hasty = ControlPlaneClient(plane, client.key, deadline=0.5)
    started = time.monotonic()
    answer = await hasty.revive_loop(grant.loop_id, None, "idle")
    await hasty.close()
    assert time.monotonic() - started < 2.5
    assert (answer.status, answer.verdict(ALIVE).outcome, answer.verdict(ALIVE).why) == \
        (None, Outcome.TRANSIENT, Why.TIMED_OUT)


async def test_connection_refused_is_transient():
    client = ControlPlaneClient(f"http://127.0.0.1:{free_port()}", Ed25519PrivateKey.generate())
    answer = await client.revive_loop("l_x", None, "idle")
    await client.close()
    assert (answer.verdict(ALIVE).outcome, answer.verdict(ALIVE).why) == (Outcome.TRANSIENT, Why.NETWORK_ERROR)


async def test_the_server_rejects_invalid_proofs(plane, joined):
    client, _host = joined
    grant = (await client.create_loop("docs")).record
    url = f"{plane}/v1/loops/{grant.loop_id}/heartbeat"
    async with httpx.AsyncClient() as http:
        wrong_key = await http.post(url, headers={"DPoP": make_proof(Ed25519PrivateKey.generate(), "POST", url)},
                                    json={})
        assert wrong_key.status_code == 401 and "not bound" in wrong_key.json()["message"]
        wrong_htu = await http.post(url, headers={"DPoP": make_proof(client.key, "POST", url + "x")}, json={})
        assert wrong_htu.status_code == 401 and "htu" in wrong_htu.json()["message"]
        proof = make_proof(client.key, "POST", url)
        assert (await http.post(url, headers={"DPoP": proof}, json={})).status_code == 200
        replayed = await http.post(url, headers={"DPoP": proof}, json={})
        assert replayed.status_code == 401 and "replayed" in replayed.json()["message"]
