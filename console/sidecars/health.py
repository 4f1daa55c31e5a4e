"""Health probes for sidecars: an http:// URL (2xx/3xx is healthy), a TCP connect, or the process
being up. Each probe is bounded in real time; how often to probe is the runner's (clock) business."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

PROBE_TIMEOUT = 1.0


class HealthProber:
    def __init__(self) -> None:
        self._client: Any = None  # httpx.AsyncClient, made on first use: only http checks pay for httpx

    async def healthy(self, check: str, port: int) -> bool:
        """For "tcp" or an http:// URL. ("process" is the runner's: up, and still up after a settle time.)"""
        if check == "tcp":
            return await tcp_accepts(port)
        return await self._http_ok(check)

    async def _http_ok(self, url: str) -> bool:
        if self._client is None:
            import httpx  # noqa: PLC0415  (the engine loads httpx only when a sidecar has an http check)

            self._client = httpx.AsyncClient(timeout=PROBE_TIMEOUT, follow_redirects=False, trust_env=False)
        try:
            response = await self._client.get(url)
        except Exception:  # any transport failure means "not healthy yet"
            return False
        return bool(response.status_code < 400)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


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
