"""The watch's pushes held encoded until drawn (tui/feed.py): a real Unix socket speaking the watch's
JSON lines, and a real console observing it through a burst."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import msgspec
import pytest

from console.core.decode import DecodeError
from console.core.errors import OwnerUnavailable
from console.core.fake_clock import FakeClock
from console.core.records import replace
from console.host.protocol import decode_line, encode_line
from console.host.watch import snapshot_of
from console.readmodel.snapshot import Snapshot
from console.tui import feed
from console.tui.app import LoopctlApp
from console.tui.feed import Encoded, decode_push, watch_encoded
from console.tui.pacing import SPACING
from console.tui.scenario import NOW, scenario_snapshot
from console.tui.source import ObservedSource


def frame(snap: Snapshot) -> bytes:
    """A push as the engine writes it: the snapshot's wire form (its record lists as tables)."""
    return encode_line({"id": 1, "ok": True, "snapshot": msgspec.Raw(snap.to_json())})


def test_a_push_decodes_to_the_records_the_sockets_own_reading_gives():
    snap = scenario_snapshot()
    line = frame(snap)
    assert decode_push(line) == snapshot_of(decode_line(line)) == snap
    newer = line.replace(b'{"id":1,', b'{"id":1,"version":7,', 1)  # a key this console does not know
    assert decode_push(newer) == snap
    with pytest.raises(DecodeError):  # a snapshot of the wrong shape: worded as before, by the socket's path
        decode_push(encode_line({"id": 1, "ok": True, "snapshot": {"schema": "x"}}))


def test_a_held_push_is_decoded_once_however_often_it_is_asked_for(monkeypatch):
    calls: list[bytes] = []
    real = feed.decode_push
    monkeypatch.setattr(feed, "decode_push", lambda line: calls.append(line) or real(line))
    push = Encoded(frame(scenario_snapshot()))
    assert not calls  # held: nothing decoded yet
    assert push.snapshot() is push.snapshot()
    assert len(calls) == 1 and push.decodes == 1


async def serve(path: Path, lines: list[bytes], gap: float) -> asyncio.Server:
    """An engine's socket that answers a watch with `lines`, `gap` seconds apart, then stays open."""
    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        for line in lines:
            writer.write(line)
            await writer.drain()
            await asyncio.sleep(gap)
        await asyncio.Event().wait()

    return await asyncio.start_unix_server(client, path=str(path))


async def test_a_refusal_on_the_watch_raises_as_the_sockets_own_reading_does(tmp_path):
    path = tmp_path / "engine.sock"
    refusal = encode_line({"id": 1, "ok": False, "error": {"code": "busy", "message": "too many watchers"}})
    async with await serve(path, [frame(scenario_snapshot()), refusal], 0.0):
        pushes = watch_encoded(path)
        first = await anext(pushes)
        assert isinstance(first, Encoded) and first.snapshot() == scenario_snapshot()
        with pytest.raises(OwnerUnavailable, match="too many watchers"):
            await anext(pushes)
        await pushes.aclose()


async def test_an_observer_decodes_only_the_pushes_it_draws(tmp_path, monkeypatch):
    """40 pushes in 0.4 s: the pacer draws a few, the latest last; each drawn push is decoded once and
    the ones it dropped never are (each decode was milliseconds at 1,000 loops, for nothing)."""
    base = scenario_snapshot()
    pushed = [replace(base, generated_at=NOW + i) for i in range(41)]
    decoded: list[float] = []
    real = feed.decode_push

    def counting(line: bytes) -> Snapshot:
        snap = real(line)
        decoded.append(snap.generated_at)
        return snap

    monkeypatch.setattr(feed, "decode_push", counting)
    path = tmp_path / "engine.sock"
    async with await serve(path, [frame(s) for s in pushed], 0.01):
        app = LoopctlApp(ObservedSource(path), paths=None, clock=FakeClock(start=NOW))
        shown: list[float] = []
        real_show = app.show_snapshot

        def show(snap: Snapshot) -> None:
            shown.append(snap.generated_at)
            real_show(snap)

        app.show_snapshot = show  # type: ignore[method-assign]
        started = time.monotonic()
        async with app.run_test(size=(120, 40)) as pilot:
            for _ in range(100):
                if app.snapshot is not None and app.snapshot.generated_at == pushed[-1].generated_at:
                    break
                await pilot.pause(0.05)
            took = time.monotonic() - started  # 0.4 s asked for; seconds on a loaded machine
            assert app.snapshot == pushed[-1]  # the last push is on screen
    assert sorted(decoded) == sorted(shown) and len(set(decoded)) == len(decoded)  # each drawn one, once
    assert 1 <= len(decoded) <= took / SPACING + 3, (decoded, took)  # not 41


def test_a_hostile_frame_is_one_error_the_console_words_not_a_traceback():
    """Nested past any use (well under the size cap), or ok without a snapshot: the errors the console's
    feed catches (OwnerUnavailable: the watch is lost; DecodeError: a snapshot it cannot read)."""
    deep = b'{"ok": true, "snapshot": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n"
    with pytest.raises(OwnerUnavailable, match="nested too deeply"):
        feed._checked(deep)
    with pytest.raises(DecodeError, match="snapshot"):
        Encoded(b'{"id": 1, "ok": true}\n').snapshot()


async def test_pushes_that_cannot_be_read_are_said_once_and_the_last_good_view_stays():
    from console.tui.source import FixedSource

    snap = scenario_snapshot()
    app = LoopctlApp(FixedSource(snap), paths=None, clock=FakeClock(start=NOW))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        bad = encode_line({"id": 1, "ok": True, "snapshot": {"schema": "x"}})
        for _ in range(5):  # one a second from an engine of another version
            app._show_pushed(Encoded(bad))
        await pilot.pause()
        said = [n for n in app._notifications if "could not be read" in n.message]
        assert len(said) == 1 and app.snapshot is snap
        app._show_pushed(Encoded(frame(replace(snap, generated_at=NOW + 1))))
        app._show_pushed(Encoded(bad))  # readable in between: a new failure is said again
        await pilot.pause()
        assert len([n for n in app._notifications if "could not be read" in n.message]) == 2
