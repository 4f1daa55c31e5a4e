"""`loopctl run --metrics-textfile`: the file is rewritten on every change and at least once a minute,
so its mtime (what Prometheus sees as node_textfile_mtime_seconds) tells a live engine from a dead one;
changes that come faster than TEXTFILE_SPACING are written together."""

from __future__ import annotations

import asyncio
import os

from console.core.config import HostConfig, LoadedConfig
from console.core.fake_clock import FakeClock
from console.core.paths import resolve_paths
from console.core.store import Store
from console.host.daemon import TEXTFILE_REFRESH, TEXTFILE_SPACING, _export
from console.host.engine import Engine


async def until(predicate, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_an_idle_engine_still_rewrites_its_textfile_every_minute(tmp_path, monkeypatch):
    from console.readmodel import metrics

    writes: list[int] = []
    real = metrics.write_textfile
    monkeypatch.setattr(metrics, "write_textfile", lambda path, snap: writes.append(1) or real(path, snap))
    paths = resolve_paths(str(tmp_path / "s"), None, {}, tmp_path)
    paths.state_dir.mkdir()
    clock = FakeClock()
    store = Store.open(paths.database, clock)
    engine = Engine(paths=paths, loaded=LoadedConfig(HostConfig(), paths.config_path, False), store=store,
                    clock=clock, pid=4242)
    await engine.start()
    target = tmp_path / "loopctl.prom"
    # The exporter's own clock: the engine's timers of a minute (retention, the reaper) sleep on the
    # engine's, so a sleeper due a minute from now on this one can only be the exporter's (on a shared
    # clock a late first write let theirs pass for it, and the exporter's minute began after the advance).
    ticker = FakeClock(start=clock.time())
    exporter = asyncio.create_task(_export(engine, target, ticker))

    def asleep_for(seconds: float) -> bool:  # the exporter asleep on its clock, due `seconds` from now
        due = ticker.monotonic() + seconds
        return any(abs(at - due) < 1e-9 and not fut.done() for at, _seq, fut in ticker._sleepers)

    def spaced() -> bool:  # asleep after a write (TEXTFILE_SPACING, or 10x its cost): only it sleeps on `ticker`
        return any(not fut.done() for _at, _seq, fut in ticker._sleepers) and not asleep_for(TEXTFILE_REFRESH)

    old = 1_000_000_000
    try:
        # written, then the pause after a write, then its minute started on the clock (the deadline is
        # set when it goes to sleep; the engine's own timers are not it)
        await until(lambda: target.exists() and spaced())
        await ticker.advance_and_settle(TEXTFILE_SPACING * 50, turns=20)
        await until(lambda: asleep_for(TEXTFILE_REFRESH))
        os.utime(target, (old, old))  # as if written long ago: any rewrite moves it
        await ticker.advance_and_settle(TEXTFILE_REFRESH - 1, turns=20)
        assert target.stat().st_mtime == old  # nothing changed and the minute is not up: left alone
        await ticker.advance_and_settle(1)
        await until(lambda: target.stat().st_mtime != old)
        assert "loopctl_engine_up 1.0" in target.read_text()
        await until(spaced)
        os.utime(target, (old, old))
        for _ in range(20):  # changes right after a write wait out the pause, and are written together
            engine.changes.bump()
        await ticker.advance_and_settle(0, turns=20)
        assert spaced() and target.stat().st_mtime == old
        before = len(writes)
        await ticker.advance_and_settle(TEXTFILE_SPACING * 50, turns=20)
        await until(lambda: target.stat().st_mtime != old)
        await until(spaced)
        assert len(writes) == before + 1  # one write for all of them
        os.utime(target, (old, old))
        await ticker.advance_and_settle(TEXTFILE_SPACING * 50, turns=20)
        await until(lambda: asleep_for(TEXTFILE_REFRESH))  # no change since: back to the minute
        assert target.stat().st_mtime == old
        engine.changes.bump()  # a change after the pause is written at once, clock or not
        await until(lambda: target.stat().st_mtime != old)
    finally:
        exporter.cancel()
        await asyncio.gather(exporter, return_exceptions=True)
        await engine.stop()
        store.close()
