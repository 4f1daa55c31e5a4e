"""`loopctl fleet`: the hosts of the contexts file, watched (or read from Prometheus), as one report
(`--once`) or one view whose `enter` opens a host's console in place and whose esc there comes back."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from console.core.clock import SystemClock
from console.core.errors import ConfigError
from console.core.printable import printable
from console.fleet.contexts import HostEntry, hosts_file, load_hosts
from console.fleet.table import Feed, fleet_exit_code
from console.host.transport import control_dir_for, ssh_command


def fleet(env: Mapping[str, str], home: Path, *, once: bool, report_format: str, prometheus: str | None,
          read_only: bool) -> int:
    path = hosts_file(env, home)
    entries = load_hosts(path)
    if prometheus is not None:
        return _prometheus(prometheus, entries, once=once, report_format=report_format, read_only=read_only,
                           env=env)
    if not entries:
        raise ConfigError(f"no hosts to watch: list them in {path} ([[host]] name = \"edge-1\", "
                          f"url = \"ssh://ops@edge-1\"), or use --prometheus URL")
    from console.fleet.watcher import dialer_for  # noqa: PLC0415

    dial = dialer_for(ssh_command(env), control_dir_for(env))
    clock = SystemClock()
    if once:
        import asyncio  # noqa: PLC0415

        from console.fleet.report import render  # noqa: PLC0415
        from console.fleet.watcher import poll_once  # noqa: PLC0415

        statuses = asyncio.run(poll_once(entries, dial, clock))
        sys.stdout.write(printable(render(statuses, report_format, clock.time())))
        return fleet_exit_code(statuses)
    from console.fleet.watcher import FleetThread, FleetWatch  # noqa: PLC0415

    watch = FleetWatch(entries, dial, clock)
    thread = FleetThread(watch)
    thread.start()
    try:
        by_name = {e.name: e for e in entries}
        return _view(watch, by_name.get, f"fleet · {len(entries)} hosts", env, read_only=read_only)
    finally:
        thread.stop()


def _view(feed: Feed, openable: Callable[[str], HostEntry | None], title: str, env: Mapping[str, str], *,
          read_only: bool) -> int:
    """The fleet, then a host's console and back, until the operator quits either."""
    from console.fleet.watcher import dialer_for  # noqa: PLC0415
    from console.tui.fleet_app import FleetApp  # noqa: PLC0415

    dial = dialer_for(ssh_command(env), control_dir_for(env))
    selected: str | None = None
    while True:
        app = FleetApp(feed, title=title, selected=selected,
                       refuse=lambda name: None if openable(name) is not None else
                       f"{name}: no ssh URL for it in the contexts file (hosts.toml): add one to open its console")
        chosen = app.run()
        feed.notify = None
        if chosen is None:
            return 0
        selected = chosen
        entry = openable(chosen)
        if entry is None:  # gone from the contexts file meanwhile
            continue
        # a host's console loads on the first enter, not before the fleet's first frame
        from console.tui.app import LoopctlApp  # noqa: PLC0415
        from console.tui.source import RemoteSource  # noqa: PLC0415

        console = LoopctlApp(RemoteSource(dial(entry)), paths=None, read_only=read_only, quit_on_hangup=True,
                             back=True)
        console.run()
        if console.next_step != "fleet":
            return console.return_code or 0


def _prometheus(url: str, entries: list[HostEntry], *, once: bool, report_format: str, read_only: bool,
                env: Mapping[str, str]) -> int:
    import asyncio  # noqa: PLC0415

    from console.fleet.prometheus import PrometheusFeed, hosts_from, query_all  # noqa: PLC0415

    clock = SystemClock()
    if once:
        from console.fleet.report import render  # noqa: PLC0415

        statuses = hosts_from(asyncio.run(query_all(url)), clock.time())
        sys.stdout.write(printable(render(statuses, report_format, clock.time())))
        return fleet_exit_code(statuses)
    from console.fleet.watcher import FleetThread  # noqa: PLC0415

    feed = PrometheusFeed(url, clock)
    thread = FleetThread(feed)
    thread.start()

    def openable(name: str) -> HostEntry | None:
        """A row's host in the contexts file: by its name, else by the instance's host part."""
        status = next((s for s in feed.statuses() if s.name == name), None)
        address = status.url.rsplit(":", 1)[0] if status is not None else ""
        return next((e for e in entries if e.ssh is not None and (e.name == name or e.ssh.host == address)), None)

    try:
        return _view(feed, openable, f"fleet · prometheus {url}", env, read_only=read_only)
    finally:
        thread.stop()
