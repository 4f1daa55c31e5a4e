"""Every control-plane call against a hostile control plane (a real HTTP server on loopback): each
wrong shape is one `bad_answer` naming the call, never an exception; the tasks that make the calls
keep running and retry; the config poll always writes its record."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console.controlplane import answers
from console.controlplane.classify import Outcome, Why
from console.controlplane.client import Answer, ControlPlaneClient
from console.controlplane.link import HostLink
from console.core.config import ControlPlaneSection
from console.core.fake_clock import FakeClock
from console.core.store import Store
from console.readmodel.tray import control_plane_reasons
from tests.conftest import drive, finish_with_clock
from tests.controlplane import hostile
from tests.controlplane.hostile import HostilePlane, Shape
from tests.controlplane.test_remote_config import make_rig


@pytest.fixture(scope="module")
def evil() -> Iterator[HostilePlane]:
    with HostilePlane() as plane:
        yield plane


@pytest.fixture
async def client(evil: HostilePlane):
    evil.reset()
    c = ControlPlaneClient(evil.url, Ed25519PrivateKey.generate(), deadline=5.0)
    c.refresh_token = "rf_good"
    yield c
    await c.close()
    evil.reset()


def calling(c: ControlPlaneClient, call: str) -> Callable[[], Awaitable[Answer[Any]]]:
    """The client method that makes `call` (a token call is made for any host call: the heartbeat's)."""
    return {
        hostile.JOIN: lambda: c.join("jt_x", "edge-1"),
        hostile.TOKEN: lambda: c.host_heartbeat("h_hostile"),
        hostile.HOST_HEARTBEAT: lambda: c.host_heartbeat("h_hostile"),
        hostile.LOOP_CREATE: lambda: c.create_loop("docs"),
        hostile.LOOP_HEARTBEAT: lambda: c.loop_heartbeat("lp_remote1", "rt_good", None, "idle"),
        hostile.REVIVAL: lambda: c.revive_loop("lp_remote1", None, "idle"),
    }[call]


CLIENT_CALLS = [c for c in hostile.CALLS if c != hostile.CONFIG]
CASES = [(call, name) for call in CLIENT_CALLS for name in hostile.wrong_shapes(call)]


@pytest.mark.parametrize(("call", "name"), CASES, ids=[f"{c}-{n}" for c, n in CASES])
async def test_each_wrong_shape_is_one_bad_answer_naming_the_call(evil, client, call, name):
    evil.answer(call, hostile.wrong_shapes(call)[name])
    answer = await asyncio.wait_for(calling(client, call)(), 10)
    assert answer.failure == "bad_answer" and answer.record is None, answer
    assert answer.verdict().outcome is Outcome.TRANSIENT and answer.verdict().why is Why.BAD_ANSWER
    assert call in client.bad_answers and client.bad_answers[call].startswith("HTTP ")
    assert "\n" not in client.bad_answers[call] and "rt_" not in client.bad_answers[call]
    evil.reset(call)  # a good answer again clears what was said about the call
    again = await calling(client, call)()
    assert again.record is not None and call not in client.bad_answers


async def test_the_bad_answer_reason_names_the_call_and_what_was_wrong(evil, client):
    evil.answer(hostile.TOKEN, hostile.PER_CALL[hostile.TOKEN]["expires_in soon"])
    await client.host_heartbeat("h_hostile")
    assert client.bad_answers == {"token": "HTTP 200: unexpected answer (Expected `float`, got `str` - at "
                                           "`$.expires_in`)"}


async def test_a_two_gib_heartbeat_body_is_refused_at_the_cap(evil, client):
    evil.answer(hostile.HOST_HEARTBEAT, Shape(200, hostile.endless))
    answer = await client.host_heartbeat("h_hostile")
    assert answer.failure == "bad_answer" and "larger than 65536 bytes" in answer.problem


# -- generated answers: whatever comes, a record or one bad answer ------------------------------------

RECORDS: dict[str, type[Any]] = {
    hostile.JOIN: answers.Joined, hostile.TOKEN: answers.AccessToken, hostile.HOST_HEARTBEAT: answers.HostBeat,
    hostile.LOOP_CREATE: answers.LoopGrant, hostile.LOOP_HEARTBEAT: answers.LoopBeat,
    hostile.REVIVAL: answers.Revived,
}
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
    | st.sampled_from(["online", "active", "paused", "DPoP", "lp_1", "a/b", "a\"b", "x\ny", ""]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)


@st.composite
def answer_bodies(draw: st.DrawFn, record: type[Any]) -> dict[str, Any]:
    """Objects with the record's own field names (some dropped, some extra), each any JSON value."""
    names = [f.name for f in msgspec.structs.fields(record)]
    body = {name: draw(json_values) for name in names if draw(st.booleans())}
    body.update(draw(st.dictionaries(st.text(max_size=8), json_values, max_size=2)))
    return body


@pytest.fixture
def looped(evil: HostilePlane) -> Iterator[tuple[asyncio.AbstractEventLoop, ControlPlaneClient]]:
    """One event loop and one client for all of a property's examples (a key and a client each would
    cost more than the exchange)."""
    loop = asyncio.new_event_loop()
    c = ControlPlaneClient(evil.url, Ed25519PrivateKey.generate(), deadline=5.0)
    c.refresh_token = "rf_good"
    yield loop, c
    loop.run_until_complete(c.close())
    loop.close()
    evil.reset()


@pytest.mark.parametrize("call", CLIENT_CALLS)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_generated_answers_decode_or_are_one_bad_answer(evil, looped, call, data):
    loop, c = looped
    body = data.draw(answer_bodies(RECORDS[call]))
    status = 201 if call in (hostile.JOIN, hostile.LOOP_CREATE) else 200
    evil.answer(call, Shape.json(status, body))
    c.bad_answers.clear()
    if call == hostile.TOKEN:
        c._access = None  # the token call is made again for each example
    try:
        answer = loop.run_until_complete(calling(c, call)())
    finally:
        evil.reset(call)
    try:
        expected = msgspec.json.decode(json.dumps(body), type=RECORDS[call])
    except (msgspec.ValidationError, msgspec.DecodeError):  # DecodeError: json.dumps wrote Infinity
        assert answer.failure == "bad_answer" and call in c.bad_answers, (body, answer)
    else:
        assert answer.failure is None and answer.record == expected and c.bad_answers == {}


# -- the tasks keep running, and say why -----------------------------------------------------------------

@pytest.mark.parametrize("name", ["captive portal html", "gzip header, plain body", "no access_token",
                                  "expires_in soon"])
async def test_a_bad_token_answer_keeps_the_host_heartbeat_beating(evil, tmp_path, name):
    evil.reset()
    clock = FakeClock(start=1_800_000_000.0)
    store = Store.open(tmp_path / "loopctl.db", clock)
    from console.controlplane.identity import load_or_create_key, store_refresh_token

    load_or_create_key(tmp_path)
    store_refresh_token(tmp_path, "rf_good")
    section = ControlPlaneSection(url=evil.url, host_id="h_hostile", heartbeat_interval_seconds=60)
    link = HostLink(section, state_dir=tmp_path, store=store, clock=clock, on_change=lambda: None)
    evil.answer(hostile.TOKEN, hostile.wrong_shapes(hostile.TOKEN)[name])
    await link.start()
    await drive(clock, lambda: "token" in link.view().bad_answer, step=0.0, what="the bad token answer")
    reasons = control_plane_reasons(link.view())
    assert [r.code for r in reasons] == ["control_plane_bad_answer"]
    assert reasons[0].text.startswith(f"control plane {evil.url} answered wrongly: token: HTTP 200")
    before = evil.count(hostile.TOKEN)
    await drive(clock, lambda: evil.count(hostile.TOKEN) > before, step=5.0, what="the next heartbeat's token call")
    assert link.view().status != "failed"  # never `rejected`: a bad answer is not a refusal
    evil.reset(hostile.TOKEN)  # the control plane heals: the next heartbeat goes out and the reason clears
    await drive(clock, lambda: link.view().status == "online" and not link.view().bad_answer, step=5.0,
                what="the heartbeat to succeed again")
    assert control_plane_reasons(link.view()) == []
    await finish_with_clock(clock, link.stop())
    store.close()


CONFIG_SHAPES = {
    "weak etag": (Shape(200, json.dumps(hostile.DOCUMENT).encode(), {"ETag": 'W/"w1"'}), "config_invalid"),
    "no etag": (Shape(200, json.dumps(hostile.DOCUMENT).encode()), "config_invalid"),
    "deeply nested": (Shape(200, hostile.nested(), {"ETag": '"n1"'}), "ok"),  # read; its apply refuses it
    "gzip header, plain body": (Shape(200, b"{}", {"ETag": '"g1"', "Content-Encoding": "gzip"}), "config_invalid"),
    "endless": (Shape(200, hostile.endless, {"ETag": '"e1"'}), "document_too_large"),
    "retry-after unicode digit": (Shape(503, b"", {"Retry-After": "\u00b2"}), "rate_limited"),
    "retry-after 400 digits": (Shape(503, b"", {"Retry-After": "9" * 400}), "rate_limited"),
    "retry-after 5000 digits": (Shape(429, b"", {"Retry-After": "9" * 5000}), "rate_limited"),
    "token html": (None, "bad_answer"),
}


@pytest.mark.parametrize("name", list(CONFIG_SHAPES))
async def test_each_wrong_config_answer_writes_the_poll_record_and_polls_again(evil, tmp_path, name):
    evil.reset()
    rig = await make_rig(evil.url, tmp_path)
    try:
        shape, result = CONFIG_SHAPES[name]
        if shape is None:
            evil.answer(hostile.TOKEN, hostile.COMMON["captive portal html"])
        else:
            evil.answer(hostile.CONFIG, shape)
        delay = await rig.poll()
        poll = rig.remote.state.last_poll
        assert poll is not None and poll.result == result and poll.at == rig.clock.time(), poll
        if shape is not None and shape.status == 200:
            assert rig.remote.state.last_apply.result in ("config_invalid", "document_too_large")
        assert 1.0 <= delay <= 60.0  # the ladder (or a bounded Retry-After), never a hostile wait
        assert rig.remote.running_etag is None and rig.restarts == []  # nothing applied
        evil.reset()
        await rig.poll()
        assert rig.remote.state.last_poll.result == "no_remote_config"
    finally:
        evil.reset()
        await finish_with_clock(rig.clock, rig.puller.stop())
        await rig.remote.stop()
        await rig.puller.client.close()
        await rig.remote.plugins.fetch.aclose()  # type: ignore[union-attr]
        rig.store.close()
