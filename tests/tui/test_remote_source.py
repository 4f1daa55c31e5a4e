"""The console's source for another host (RemoteSource): watched and acted on through a dialer, here
this host's own socket (the ssh dialer is the same stream over ssh: tests/fleet/test_over_ssh.py)."""

from __future__ import annotations

import asyncio
import json

import pytest

from console.core.actions import ActionError
from console.core.errors import OwnerUnavailable
from console.host.transport import LocalDialer
from console.tui.source import RemoteSource
from tests.conftest import Host


async def test_it_follows_the_far_engine_acts_on_it_and_says_why_its_feed_ended(host: Host, tmp_path):
    flag = tmp_path / "flag"
    script = f"test -e {flag} || {{ touch {flag}; exit 1; }}; exec sleep 86400"
    host.write_config(f'[[sidecar]]\nname = "job"\ncommand = ["sh", "-c", {json.dumps(script)}]\nmax_restarts = 0\n')
    engine = host.spawn("run")
    host.wait_owner(engine)
    source = RemoteSource(LocalDialer("edge-1", host.state / "engine.sock"))
    assert source.role == "observer via socket edge-1" and source.ready() is None
    states: list[str] = []
    failed = asyncio.Event()
    ready = asyncio.Event()

    def sink(snap) -> None:
        states.append(snap.sidecars[0].state if snap.sidecars else "")
        (failed if states[-1] == "failed" else ready if states[-1] == "ready" else asyncio.Event()).set()

    feed = asyncio.create_task(source.follow(sink))
    async with asyncio.timeout(20):
        await failed.wait()
    with pytest.raises(ActionError) as refused:
        await source.act("retry", "sidecar:nope")
    assert refused.value.code != "owner_unavailable"
    result = await source.act("retry", "sidecar:job")
    assert "relaunching" in result["message"]
    async with asyncio.timeout(20):
        await ready.wait()
    engine.terminate()
    with pytest.raises(OwnerUnavailable) as ended:
        async with asyncio.timeout(20):
            await feed
    assert "hung up" in ended.value.message
    with pytest.raises(ActionError) as gone:
        await source.act("retry", "sidecar:job")
    assert gone.value.code == "owner_unavailable" and "no engine owns" in gone.value.message
