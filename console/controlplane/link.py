"""The engine's link to its control plane: host heartbeats, and the host status they report.

The status goes through the one transition path (`host:<id>`), so effects wired to
"provisioning becomes online" (the plugin reconcile of the remote-config issue) fire whichever
path performs it. Credentials stay in their files; nothing here logs or stores a token.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from pathlib import Path

from console.controlplane.classify import Outcome
from console.controlplane.client import ControlPlaneClient
from console.controlplane.config_pull import ConfigPuller
from console.controlplane.heartbeats import LoopHeartbeats
from console.controlplane.identity import load_key, load_refresh_token
from console.controlplane.view import ControlPlaneView
from console.core.clock import Clock
from console.core.config import ControlPlaneSection, LoopConfig
from console.core.errors import LoopctlError
from console.core.printable import printable
from console.core.store import Store
from console.core.tasks import Tasks
from console.remote.apply import RemoteConfig
from console.runs.scheduler import Loops

log = logging.getLogger("loopctl.controlplane")
HOST_KIND = "host"


class HostLink:
    def __init__(self, section: ControlPlaneSection, *, state_dir: Path, store: Store, clock: Clock,
                 on_change: Callable[[], None], loops: Loops | None = None,
                 loop_configs: list[LoopConfig] | None = None, remote: RemoteConfig | None = None,
                 tasks: Tasks | None = None) -> None:
        self.section = section
        self.state_dir = state_dir
        self.store = store
        self.clock = clock
        self.on_change = on_change
        self.client: ControlPlaneClient | None = None
        self.last_heartbeat_at: float | None = None
        self.last_error = ""
        self.tasks = tasks if tasks is not None else Tasks(clock, on_change)
        self.loops = loops
        self.loop_configs = loop_configs or []
        self.heartbeats: LoopHeartbeats | None = None
        self.remote = remote
        self.puller: ConfigPuller | None = None

    async def start(self) -> None:
        if self.store.thing(HOST_KIND, self.section.host_id) is None:
            self.store.transition(HOST_KIND, self.section.host_id, "provisioning", "joined; no heartbeat yet",
                                  {"url": self.section.url})
        try:
            key = load_key(self.state_dir)
        except LoopctlError as exc:
            self._fail(exc.message)
            return
        refresh = load_refresh_token(self.state_dir)
        if refresh is None:
            self._fail(f"no refresh token in {self.state_dir / 'secrets'}: join again with `loopctl join`")
            return
        self.client = ControlPlaneClient(self.section.url, key)
        self.client.refresh_token = refresh
        self.tasks.spawn("host-heartbeat", self._beat, f"{HOST_KIND}:{self.section.host_id}")
        if self.loops is not None and self.loop_configs:
            await self._start_heartbeats(self.loop_configs)  # creates managed loops, then boot recovery
        if self.remote is not None:  # polls at once (at boot, and so right after a join), then on its interval
            self.puller = ConfigPuller(self.client, self.section.host_id, self.remote, self.clock, tasks=self.tasks)
            self.puller.start()

    async def reconfigure(self, loop_configs: list[LoopConfig]) -> None:
        self.loop_configs = loop_configs
        if self.heartbeats is not None:
            await self.heartbeats.reconfigure(loop_configs)
        elif self.client is not None and self.loops is not None and loop_configs:
            await self._start_heartbeats(loop_configs)

    async def _start_heartbeats(self, configs: list[LoopConfig]) -> None:
        assert self.client is not None and self.loops is not None
        self.heartbeats = LoopHeartbeats(self.client, state_dir=self.state_dir, configs=configs, store=self.store,
                                         clock=self.clock, loops=self.loops,
                                         round_seconds=self.section.loop_heartbeat_seconds, tasks=self.tasks,
                                         on_change=self.on_change)
        await self.heartbeats.start()

    async def stop(self) -> None:
        """Each part stops whatever another part did: nothing an answer caused may keep the engine
        from stopping its sidecars after this."""
        steps = [self.puller.stop if self.puller is not None else None,
                 self.heartbeats.stop if self.heartbeats is not None else None,
                 lambda: self.tasks.stop("host-heartbeat"),
                 self.client.close if self.client is not None else None]
        for step in steps:
            if step is None:
                continue
            try:
                await step()
            except Exception:  # logged; the next step still runs
                log.exception("control-plane link: stopping failed")

    def _fail(self, why: str) -> None:
        self.last_error = why
        self.store.transition(HOST_KIND, self.section.host_id, "failed", why, {"url": self.section.url})

    async def _beat(self) -> None:
        assert self.client is not None
        while True:
            answer = await self.client.host_heartbeat(self.section.host_id)
            verdict = answer.verdict()
            self.tasks.ran_well("host-heartbeat")
            if verdict.outcome is Outcome.LIVE and answer.record is not None:
                self.last_heartbeat_at = self.clock.time()
                self.last_error = ""
                status = answer.record.status
                if self.store.transition(HOST_KIND, self.section.host_id, status, f"control plane reports {status}",
                                         {"url": self.section.url}) is None:
                    self.on_change()  # same status: the heartbeat time still changed
            elif verdict.outcome is Outcome.TERMINAL:
                self._fail(f"the control plane rejected this host ({verdict.why}): join again with `loopctl join`")
                return
            else:
                self.last_error = f"heartbeat failed ({verdict.why}"
                retry = printable(answer.retry_after[:40], lines=False) if answer.retry_after else ""
                self.last_error += f", retry after {retry})" if retry else ")"
                log.warning("control plane %s: %s", self.section.url, self.last_error)
                self.on_change()
            interval = self.section.heartbeat_interval_seconds
            await self.clock.sleep(interval * random.uniform(0.9, 1.1))  # jitter: hosts do not beat in step

    def view(self) -> ControlPlaneView:
        thing = self.store.thing(HOST_KIND, self.section.host_id)
        bad = self.client.bad_answers if self.client is not None else {}
        return ControlPlaneView(url=self.section.url, host_id=self.section.host_id,
                                status=thing.state if thing else "provisioning",
                                last_heartbeat_at=self.last_heartbeat_at, last_error=self.last_error,
                                bad_answer="; ".join(f"{call}: {problem}" for call, problem in sorted(bad.items())))
