"""The fleet from Prometheus, for fleets too big to watch one by one: each host's `loopctl run
--metrics-textfile` feeds its node_exporter's textfile collector, Prometheus scrapes them, and this
reads the same table back from the HTTP API (`/api/v1/query`), one host per `instance`.

A host is `stale` when its textfile is older than `stale_after` (by node_textfile_mtime_seconds:
the engine rewrites it at least every minute, so an old one means the engine is gone), and
`unreachable` when Prometheus's last scrape of it failed (`up == 0`). Parsing is pure.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import defaultdict
from collections.abc import Callable

from console.core.clock import Clock
from console.core.errors import EXIT_UNKNOWN, LoopctlError
from console.core.records import View
from console.core.time_text import duration
from console.fleet.table import STALE, UNREACHABLE, Counts, HostStatus
from console.readmodel.tray import CODE_PRIORITY, DEFAULT_PRIORITY, Level

STALE_AFTER = 300.0  # five of the engine's 60 s textfile refreshes
POLL_INTERVAL = 5.0
QUERY_TIMEOUT = 10.0
MAX_ANSWER_BYTES = 16 << 20
TEXTFILE = 'file=~".*loopctl[^/]*[.]prom"'  # the textfile's name starts with loopctl (README)
QUERIES = {
    "engine": "loopctl_engine_up",
    "info": "loopctl_host_info",
    "tray": "loopctl_tray_state == 1",
    "reasons": "loopctl_tray_reasons > 0",
    "sidecars": "loopctl_sidecar_state == 1",
    "loops": "loopctl_loop_state == 1",
    "runs": 'loopctl_recent_runs{status="running"}',
    "age": f"time() - node_textfile_mtime_seconds{{{TEXTFILE}}}",
    "up": "up",
}


class Sample(View, frozen=True):
    labels: dict[str, str]
    value: float


class PrometheusError(LoopctlError):
    """Prometheus could not be asked, or answered something that is not a query result: the fleet
    cannot be evaluated (UNKNOWN)."""

    exit_code = EXIT_UNKNOWN


def parse_answer(body: bytes, query: str, url: str) -> list[Sample]:
    """An instant vector from `/api/v1/query`, or one line on what is wrong with the answer."""
    where = f"Prometheus at {url}"
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise PrometheusError(f"{where} answered {query!r} with something that is not JSON: is it Prometheus?"
                              ) from None
    if not isinstance(data, dict):
        raise PrometheusError(f"{where}: the answer to {query!r} is not a JSON object")
    if data.get("status") != "success":
        raise PrometheusError(f"{where} refused {query!r}: {data.get('errorType', 'error')}: "
                              f"{data.get('error', 'no reason given')}")
    result = data.get("data")
    if not isinstance(result, dict) or result.get("resultType") != "vector" or not isinstance(
            result.get("result"), list):
        raise PrometheusError(f"{where}: the answer to {query!r} is not an instant vector")
    samples = []
    for item in result["result"]:
        try:
            labels = {str(k): str(v) for k, v in item["metric"].items()}
            value = float(item["value"][1])
        except (KeyError, IndexError, TypeError, ValueError, AttributeError):
            raise PrometheusError(f"{where}: a sample in the answer to {query!r} has no metric or value") from None
        samples.append(Sample(labels=labels, value=value))
    return samples


def _level(word: str) -> Level | None:
    try:
        return Level(word)
    except ValueError:
        return None


def hosts_from(answers: dict[str, list[Sample]], now: float, *, stale_after: float = STALE_AFTER) -> list[HostStatus]:
    """One status per instance that has loopctl metrics, or whose scrape failed in a job that does."""
    by: dict[str, dict[str, list[Sample]]] = defaultdict(lambda: defaultdict(list))
    for name, samples in answers.items():
        for s in samples:
            instance = s.labels.get("instance")
            if instance:
                by[instance][name].append(s)
    jobs = {s.labels.get("job") for s in answers.get("engine", [])}
    statuses = []
    for instance in sorted(by):
        got = by[instance]
        up = [s for s in got["up"] if s.labels.get("job") in jobs]
        if not got["engine"] and not (up and up[0].value == 0):
            continue  # a target of no loopctl job
        statuses.append(_host(instance, got, now, stale_after))
    return statuses


def _host(instance: str, got: dict[str, list[Sample]], now: float, stale_after: float) -> HostStatus:
    info = got["info"]
    name = info[0].labels.get("host", "") if info else ""
    name = name or instance
    ages = [s.value for s in got["age"]]
    pushed_at = now - min(ages) if ages else None
    sidecars = {s.labels.get("sidecar", "") for s in got["sidecars"]}
    counts = Counts(
        sidecars_ready=sum(1 for s in got["sidecars"] if s.labels.get("loopctl_sidecar_state") == "ready"),
        sidecars_total=len(sidecars),
        loops_active=sum(1 for s in got["loops"] if s.labels.get("loopctl_loop_state") == "active"),
        loops_escalated=sum(1 for s in got["loops"] if s.labels.get("loopctl_loop_state") == "escalated"),
        runs_running=int(sum(s.value for s in got["runs"])),
    )
    base = HostStatus(name=name, url=instance, counts=counts, pushed_at=pushed_at)
    up = got["up"]
    if up and up[0].value == 0:
        return _problem(base, UNREACHABLE, f"Prometheus cannot scrape {instance} (up == 0): is node_exporter "
                                           f"running there?")
    if not got["engine"]:
        return _problem(base, UNREACHABLE, f"no loopctl metrics from {instance}")
    if ages and min(ages) > stale_after:
        return _problem(base, STALE, f"metrics {duration(min(ages))} old (node_textfile_mtime_seconds): is "
                                     f"`loopctl run --metrics-textfile` running there?")
    if got["engine"][0].value == 0:
        return HostStatus(name=name, url=instance, level=Level.DOWN, reason="engine not running",
                          counts=counts, pushed_at=pushed_at)
    levels = [lv for s in got["tray"] if (lv := _level(s.labels.get("loopctl_tray_state", ""))) is not None]
    level = max(levels, key=lambda lv: lv.rank) if levels else None
    if level is None:
        return _problem(base, UNREACHABLE, f"no loopctl_tray_state from {instance}")
    return HostStatus(name=name, url=instance, level=level, reason=_top_reason(got["reasons"]), counts=counts,
                      pushed_at=pushed_at)


def _problem(base: HostStatus, problem: str, why: str) -> HostStatus:
    return HostStatus(name=base.name, url=base.url, counts=base.counts, pushed_at=base.pushed_at, problem=problem,
                      reason=why)


def _top_reason(reasons: list[Sample]) -> str:
    """The metrics carry each reason's level and code, not its text: the worst code, as `code (level)`."""
    ranked = sorted(((lv, s.labels.get("code", "")) for s in reasons
                     if (lv := _level(s.labels.get("level", ""))) not in (None, Level.OK)),
                    key=lambda p: (-p[0].rank if p[0] else 0, CODE_PRIORITY.get(p[1], DEFAULT_PRIORITY), p[1]))
    if not ranked:
        return ""
    level, code = ranked[0]
    more = f" (+{len(ranked) - 1} more)" if len(ranked) > 1 else ""
    return f"{code} ({level.value if level else ''}){more}"


async def query_all(url: str, *, timeout: float = QUERY_TIMEOUT) -> dict[str, list[Sample]]:
    """Every query at once; any failure is one line naming Prometheus and what to check."""
    import httpx  # noqa: PLC0415  (only the --prometheus fleet loads it)

    from console.controlplane.bounded import TooLarge, read_capped  # noqa: PLC0415

    base = url.rstrip("/")

    async def one(http: httpx.AsyncClient, name: str, query: str) -> tuple[str, list[Sample]]:
        async with http.stream("GET", f"{base}/api/v1/query", params={"query": query}) as response:
            body = await read_capped(response, MAX_ANSWER_BYTES)
            if response.status_code != 200 and not body.startswith(b"{"):
                raise PrometheusError(f"Prometheus at {url} answered HTTP {response.status_code} to {query!r}: "
                                      f"check --prometheus")
        return name, parse_answer(body, query, url)

    try:
        async with asyncio.timeout(timeout), httpx.AsyncClient(timeout=timeout) as http:
            results = await asyncio.gather(*(one(http, n, q) for n, q in QUERIES.items()))
    except TimeoutError:
        raise PrometheusError(f"Prometheus at {url} did not answer within {timeout:g} s") from None
    except TooLarge:
        raise PrometheusError(f"Prometheus at {url} answered more than {MAX_ANSWER_BYTES} bytes") from None
    except httpx.HTTPError as exc:
        raise PrometheusError(f"cannot reach Prometheus at {url} ({type(exc).__name__}: {exc}): "
                              f"check --prometheus") from None
    return dict(results)


class PrometheusFeed:
    """The fleet view's feed: Prometheus asked every POLL_INTERVAL s (on the clock); an answer that
    fails keeps the last table and says why in `problem`."""

    def __init__(self, url: str, clock: Clock, *, stale_after: float = STALE_AFTER,
                 interval: float = POLL_INTERVAL) -> None:
        self.url = url
        self.clock = clock
        self.stale_after = stale_after
        self.interval = interval
        self._lock = threading.Lock()
        self._statuses: list[HostStatus] = []
        self.problem = ""
        self.notify: Callable[[], None] | None = None

    def statuses(self) -> list[HostStatus]:
        with self._lock:
            return list(self._statuses)

    async def poll(self) -> None:
        try:
            answers = await query_all(self.url)
        except PrometheusError as exc:
            self.problem = exc.message
        else:
            self.problem = ""
            with self._lock:
                self._statuses = hosts_from(answers, self.clock.time(), stale_after=self.stale_after)
        if self.notify is not None:
            self.notify()

    async def run(self) -> None:
        while True:
            await self.poll()
            await self.clock.sleep(self.interval)


