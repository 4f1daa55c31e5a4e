"""Health probes for sidecars: an http:// URL (2xx/3xx is healthy), a TCP connect, or the process
being up. Each probe is bounded in real time; how often to probe is the runner's (clock) business.

The HTTP probe asks for the status line only, with the standard library's client on a thread:
the engine speaks HTTP to a control plane through httpx in controlplane/, and nowhere else."""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit

PROBE_TIMEOUT = 1.0


class HealthProber:
    async def healthy(self, check: str, port: int) -> bool:
        """For "tcp" or an http:// URL. ("process" is the runner's: up, and still up after a settle time.)"""
        if check == "tcp":
            return await tcp_accepts(port)
        return await asyncio.to_thread(http_ok, check)

    async def close(self) -> None:
        """Nothing is held between probes (each one connects afresh, as a health check should)."""


def http_ok(url: str, timeout: float = PROBE_TIMEOUT) -> bool:
    """GET `url` without following redirects: any status below 400 is healthy, any failure is not."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        return False
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    # Imported here: only a sidecar with an HTTP check needs it, and at import it cost every owning
    # console's start and every `loopctl run` 39 M instructions (about 10 ms), email's parser with it.
    import http.client  # noqa: PLC0415

    try:
        connection = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    except ValueError:  # a port that is not a number
        return False
    try:
        connection.request("GET", path, headers={"User-Agent": "loopctl-health"})
        return connection.getresponse().status < 400
    except (OSError, http.client.HTTPException, ValueError):
        return False
    finally:
        connection.close()


async def tcp_accepts(port: int, host: str = "127.0.0.1") -> bool:
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            _reader, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True
