"""The config pull loop: poll at once at boot (and so right after a join), then every poll interval.

`If-None-Match` is always the running config's etag. A 401 refreshes the access token once (the
client); 404 is a control plane without remote config (legacy backoff); 429/503 honour
Retry-After; everything else backs off linearly. Each poll has a deadline on the engine's clock
and is cancelled when it passes; stopping gives an in-flight poll one second, then cancels it. The
incident to never repeat: a stalled config GET wedged shutdown.
"""

from __future__ import annotations

import asyncio
import logging

from console.controlplane.client import ConfigFetch, ControlPlaneClient
from console.controlplane.poll_schedule import Streak, advance, next_delay, parse_retry_after
from console.core.clock import Clock
from console.core.tasks import Tasks
from console.core.waiting import cancel_and_wait, sleep_unless
from console.remote.apply import MAX_DOCUMENT_BYTES, RemoteConfig
from console.remote.records import PollRecord

log = logging.getLogger("loopctl.config_pull")

POLL_DEADLINE = 30.0
STOP_GRACE = 1.0


def describe(fetched: ConfigFetch) -> tuple[str, str]:
    """(result, detail) for the poll record: what the operator reads in the Config tab."""
    status = fetched.status
    if fetched.error:
        return fetched.error, fetched.detail
    if status == 200:
        return "ok", f"document {fetched.etag}"
    if status == 304:
        return "not_modified", "the running document is current"
    if status == 404:
        return "no_remote_config", "the control plane has no remote config for this host (legacy backoff)"
    if status == 401:
        return "unauthorized", "the control plane refused this host's credentials (refreshed once): join again " \
                               "if it persists"
    if status in (429, 503):
        return "rate_limited", f"HTTP {status}, Retry-After {fetched.retry_after!r}"
    return "server_error", f"HTTP {status}"


class ConfigPuller:
    def __init__(self, client: ControlPlaneClient, host_id: str, remote: RemoteConfig, clock: Clock, *,
                 deadline: float = POLL_DEADLINE, stop_grace: float = STOP_GRACE, tasks: Tasks | None = None) -> None:
        self.client = client
        self.host_id = host_id
        self.remote = remote
        self.clock = clock
        self.deadline = deadline
        self.stop_grace = stop_grace
        self.tasks = tasks if tasks is not None else Tasks(clock)
        self.streak = Streak()
        self.polls = 0
        self._task: asyncio.Task[None] | None = None
        self._inflight: asyncio.Future[ConfigFetch] | None = None
        self._stopping = False

    def start(self) -> None:
        self._task = self.tasks.spawn("config-pull", self._run, "remote_config:host")

    async def stop(self) -> None:
        """An in-flight request gets `stop_grace` seconds to finish, then it is cancelled."""
        self._stopping = True
        inflight = self._inflight
        if inflight is not None and not inflight.done():
            await sleep_unless(self.clock, self.stop_grace, inflight)
            inflight.cancel()
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None

    async def _run(self) -> None:
        while not self._stopping:
            try:
                delay = await self.poll_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug here must not end polling for good, nor leave the record stale
                log.exception("config poll failed")
                delay = self.remote.poll_interval
                now = self.clock.time()
                problem = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
                self.remote.record_poll(PollRecord(now, "poll_error", None, f"the poll failed ({problem}); "
                                                   f"polling again in {delay:.0f} s", False), now + delay)
            self.tasks.ran_well("config-pull")
            self.remote.schedule(self.clock.time() + delay)
            await self.clock.sleep(delay)

    async def fetch(self) -> ConfigFetch:
        """One GET under the deadline (on the engine's clock); cancelled when the deadline passes."""
        request = asyncio.ensure_future(
            self.client.get_config(self.host_id, self.remote.running_etag, MAX_DOCUMENT_BYTES))
        self._inflight = request
        try:
            await sleep_unless(self.clock, self.deadline, request)
            if not request.done():
                await cancel_and_wait(request)
                return ConfigFetch(None, error="timed_out",
                                   detail=f"no complete answer within {self.deadline:g} s: request cancelled")
            if request.cancelled():
                return ConfigFetch(None, error="cancelled", detail="stopped while polling")
            return request.result()
        finally:
            self._inflight = None

    async def poll_once(self) -> float:
        """Poll, act on the answer, record it; returns the delay until the next poll."""
        fetched = await self.fetch()
        self.polls += 1
        if self._stopping:
            return 0.0
        result, detail = describe(fetched)
        authenticated = fetched.status in (200, 304) and fetched.error is None
        failed = result not in ("ok", "not_modified", "no_remote_config")
        self.streak = advance(self.streak, fetched.status, failed)
        now = self.clock.time()
        retry_after = parse_retry_after(fetched.retry_after, now)
        delay = next_delay(fetched.status if not fetched.error else None, self.remote.poll_interval, self.streak,
                           retry_after)
        if authenticated:
            await self.remote.poll_succeeded()
        if fetched.status == 304:
            await self.remote.not_modified()
        elif fetched.status == 200 and fetched.error:
            detail = f"{fetched.etag or '(no etag)'}: {fetched.detail}"
            self.remote.refuse(fetched.etag, fetched.error, fetched.detail)
        elif fetched.status == 200 and fetched.body is not None:
            outcome = await self.remote.offer(fetched.etag, fetched.body)
            detail = f"{fetched.etag}: {outcome}"
            delay = self.remote.poll_interval  # the document may have changed the interval
        if failed:
            log.warning("config poll: %s: %s (next poll in %.0f s)", result, detail, delay)
        self.remote.record_poll(PollRecord(now, result, fetched.status, detail, authenticated), now + delay)
        return delay
