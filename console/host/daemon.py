"""`loopctl run`: the engine without a screen, for systemd. SIGTERM/SIGINT stop it cleanly
(socket removed, stop recorded, lease released); SIGHUP reads the config file again. With
`--standby`, a second engine observes the owner and takes the host over the moment the owner exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
import time
from pathlib import Path

from console.core.clock import Clock, SystemClock
from console.core.config import LoadedConfig, load_config
from console.core.errors import EXIT_RELOAD, LeaseError, LoopctlError, OwnerUnavailable
from console.core.paths import Paths, ensure_state_dir
from console.core.waiting import first_done, sleep_unless
from console.host import journal
from console.host.engine import Engine
from console.host.lease import Lease, read_holder
from console.host.owner import Owner
from console.host.takeover import takeover_config
from console.host.watch import watch

log = logging.getLogger("loopctl.daemon")


TEXTFILE_REFRESH = 60.0  # the fleet's --prometheus calls a host stale after 5 of these (300 s)
# Between two writes at least this, and 10x what the last one cost: at 1,000 loops a write is ~130 ms
# of pure Python (prometheus_client), and written on every change it held the interpreter through a
# whole burst. node_exporter is scraped every 15 s or more, so a change is at most a third of a scrape
# late; the changes of a pause are written together.
TEXTFILE_SPACING = 5.0


def run(paths: Paths, loaded: LoadedConfig, *, standby: bool = False, read_only: bool = False,
        clock: Clock | None = None, metrics_textfile: Path | None = None) -> int:
    journal.setup(os.environ, paths.state_dir / "secrets")
    return asyncio.run(_main(paths, loaded, clock or SystemClock(), standby=standby, read_only=read_only,
                             metrics_textfile=metrics_textfile))


async def _main(paths: Paths, loaded: LoadedConfig, clock: Clock, *, standby: bool, read_only: bool,
                metrics_textfile: Path | None = None) -> int:
    ensure_state_dir(paths)
    if metrics_textfile is not None and not metrics_textfile.parent.is_dir():
        raise LoopctlError(f"--metrics-textfile {metrics_textfile}: directory {metrics_textfile.parent} does not "
                           f"exist: point it at node_exporter's textfile directory")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, _dump_tasks)
    hangups = asyncio.Event()  # SIGHUP: read the config file again (`systemctl reload`), never die of it
    loop.add_signal_handler(signal.SIGHUP, hangups.set)

    lease = Lease.try_acquire(paths.lock)
    if lease is None:
        holder = read_holder(paths.lock)
        who = f"pid {holder.pid} since {time.strftime('%H:%M:%S', time.localtime(holder.started_at))}" \
            if holder else "another process"
        if not standby:
            raise LeaseError(
                f"an engine already owns {paths.state_dir} ({who}): watch it with `loopctl` or "
                f"`loopctl --once`, or wait to take over with `loopctl run --standby`"
            )
        log.info("observing the engine that owns %s (%s); taking over when it exits", paths.state_dir, who)
        lease = await wait_for_lease(paths, stop)
        if lease is None:
            log.info("stopped while in standby")
            return 0
        try:
            paths, loaded = takeover_config(paths)  # the config the owner ran, never our own default
        except LoopctlError:
            lease.release()
            raise
        log.info("took over %s", paths.state_dir)

    owner = Owner(paths, loaded, clock, lease, read_only=read_only)
    try:
        owner.prepare()
    except BaseException:
        lease.release()
        raise
    assert owner.store is not None
    journal.attach(owner.store)  # before the engine starts: its own start is the first line
    async with owner as engine:
        log.info("engine owns %s (pid %d, config %s%s)", paths.state_dir, engine.pid, loaded.path,
                 "" if loaded.present else ": not present, embedded default")
        engine.reload_exit = True
        exporter = asyncio.create_task(_export(engine, metrics_textfile, clock)) if metrics_textfile else None
        reloader = asyncio.create_task(_reload_on_hangup(engine, paths, hangups))
        stopping = asyncio.create_task(stop.wait())
        reloading = asyncio.create_task(engine.reload_requested.wait())
        await first_done(stopping, reloading)
        stopping.cancel()
        reloading.cancel()
        reloader.cancel()
        if exporter is not None:
            exporter.cancel()
        log.info("stopping" + (" for a staged restart (exit 75)" if engine.reload_requested.is_set() else ""))
        code = EXIT_RELOAD if engine.reload_requested.is_set() else 0
    log.info("stopped")
    return code


async def _reload_on_hangup(engine: Engine, paths: Paths, hangups: asyncio.Event) -> None:
    while True:
        await hangups.wait()
        hangups.clear()
        try:
            outcome = await engine.reload_local(load_config(paths))
        except LoopctlError as exc:
            log.error("SIGHUP: config not reloaded, the running one stays: %s", exc.message)
            engine.refuse_reload(exc.message)
            continue
        except Exception as exc:  # a bug must not end reloading (or the engine): say it, keep serving
            log.exception("SIGHUP: reloading the config failed")
            engine.refuse_reload(f"{type(exc).__name__}: {exc}; see the engine's log")
            continue
        log.info("SIGHUP: config reloaded from %s: %s", paths.config_path, outcome)


def _dump_tasks() -> None:
    """`kill -USR1 <pid>`: what every task of the engine is waiting on, in the log (for a hang)."""
    import io  # noqa: PLC0415

    for task in asyncio.all_tasks():
        out = io.StringIO()
        task.print_stack(file=out)
        log.warning("task %s:\n%s", task.get_name(), out.getvalue().rstrip())


async def _export(engine: Engine, path: Path, clock: Clock) -> None:
    """Rewrite the textfile on every change (those of a TEXTFILE_SPACING pause together), and at least
    every TEXTFILE_REFRESH seconds: its mtime (node_textfile_mtime_seconds) then proves the engine alive,
    where a killed engine's last file would otherwise read as current forever."""
    from console.readmodel.metrics import write_textfile  # noqa: PLC0415  (only when asked for)

    seen = -1
    while True:
        newer = asyncio.ensure_future(engine.changes.wait_newer(seen))
        try:
            await sleep_unless(clock, TEXTFILE_REFRESH, newer)
        finally:
            newer.cancel()
        seen = newer.result() if newer.done() and not newer.cancelled() else seen
        started = time.monotonic()  # what the write costs, in real time whatever the clock
        try:
            await asyncio.to_thread(write_textfile, path, engine.snapshot().at(clock.time()))
        except OSError as exc:
            log.error("cannot write the metrics textfile %s: %s", path, exc)
        # a stalled write (an NFS directory, a loaded host) never pauses it past half its refresh
        await clock.sleep(min(max(TEXTFILE_SPACING, 10 * (time.monotonic() - started)), TEXTFILE_REFRESH / 2))


async def wait_for_lease(paths: Paths, stop: asyncio.Event) -> Lease | None:
    """Block on the lease in a thread (the kernel wakes us when the owner exits) while observing
    the owner over its socket. None if asked to stop first."""
    loop = asyncio.get_running_loop()
    got: asyncio.Future[Lease] = loop.create_future()

    def deliver(lease: Lease) -> None:
        if got.done():
            lease.release()
        else:
            got.set_result(lease)

    def fail(exc: BaseException) -> None:
        if not got.done():
            got.set_exception(exc)

    def worker() -> None:
        try:
            lease = Lease.acquire_blocking(paths.lock)
        except BaseException as exc:
            with contextlib.suppress(RuntimeError):  # the loop may be gone if we stopped meanwhile
                loop.call_soon_threadsafe(fail, exc)
            return
        try:
            loop.call_soon_threadsafe(deliver, lease)
        except RuntimeError:
            lease.release()

    # A daemon thread: a blocked flock must not keep the process alive once we decide to stop.
    threading.Thread(target=worker, name="loopctl-standby", daemon=True).start()
    observer = asyncio.create_task(_observe(paths))
    stopping = asyncio.create_task(stop.wait())
    try:
        await first_done(got, stopping)
    finally:
        observer.cancel()
        stopping.cancel()
    if got.done():
        return got.result()
    got.cancel()
    return None


async def _observe(paths: Paths) -> None:
    """Log the owner's tray as it changes, the way an observer console would show it."""
    last: tuple[str, str] | None = None
    try:
        async for snap in watch(paths.socket):
            top = snap.tray.top
            current = (snap.tray.state.value, top.text if top else "")
            if current != last:
                log.info("owner pid %s: tray %s%s", snap.engine.pid, current[0],
                         f": {current[1]}" if current[1] else "")
                last = current
        log.info("the owning engine went away")
    except (OSError, OwnerUnavailable) as exc:
        log.info("cannot observe the owner (%s); waiting for the lease", exc)
