"""Bodies read under a byte cap that holds before anything is buffered.

The incident to never repeat: the 1 MiB cap was checked after the whole body had been read. Here a
Content-Length over the cap is refused before the body is read, and the stream is counted as it
arrives. Compressed bodies are inflated here, never by httpx, with a bound on each step's output:
a gzip bomb costs at most `cap` bytes of memory before it is refused.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

ACCEPT_ENCODING = "gzip, deflate"
# A compressed stream may be a little larger than what it inflates to (incompressible data).
RAW_SLACK = 64 * 1024


class TooLarge(Exception):
    pass


class BadEncoding(Exception):
    pass


class BoundedDecoder:
    """Feed raw chunks, get decoded bytes; raises TooLarge once more than `cap` bytes come out."""

    def __init__(self, encoding: str, cap: int) -> None:
        encoding = encoding.strip().lower()
        if encoding in ("", "identity"):
            self._inflate: zlib._Decompress | None = None
        elif encoding in ("gzip", "x-gzip", "deflate"):
            self._inflate = zlib.decompressobj(32 + zlib.MAX_WBITS)  # gzip or zlib header, detected
        else:
            raise BadEncoding(f"unsupported Content-Encoding {encoding!r}")
        self.cap = cap
        self.raw = 0
        self.decoded = 0

    def _count(self, out: bytes) -> bytes:
        self.decoded += len(out)
        if self.decoded > self.cap:
            raise TooLarge(f"body larger than {self.cap} bytes")
        return out

    def feed(self, chunk: bytes) -> bytes:
        self.raw += len(chunk)
        if self.raw > self.cap + RAW_SLACK:
            raise TooLarge(f"body larger than {self.cap} bytes")
        if self._inflate is None:
            return self._count(chunk)
        parts = []
        data = chunk
        try:
            while data:
                parts.append(self._count(self._inflate.decompress(data, self.cap - self.decoded + 1)))
                data = self._inflate.unconsumed_tail
        except zlib.error as exc:
            raise BadEncoding(f"corrupt compressed body ({exc})") from None
        return b"".join(parts)

    def finish(self) -> bytes:
        if self._inflate is None:
            return b""
        try:
            out = self._inflate.flush()
        except zlib.error as exc:
            raise BadEncoding(f"corrupt compressed body ({exc})") from None
        if not self._inflate.eof:
            raise BadEncoding("truncated compressed body")
        return self._count(out)


def precheck_length(response: httpx.Response, cap: int) -> None:
    """Refuse by the announced length, before a byte of the body is read."""
    length = response.headers.get("content-length", "").strip()
    if not length.isdigit():
        return
    identity = response.headers.get("content-encoding", "identity").strip().lower() in ("", "identity")
    if int(length) > (cap if identity else cap + RAW_SLACK):
        raise TooLarge(f"Content-Length {int(length)} is over the {cap}-byte cap")


async def decoded_chunks(response: httpx.Response, cap: int) -> AsyncIterator[bytes]:
    """The decoded body of a streamed response, chunk by chunk; TooLarge or BadEncoding before the cap
    is passed (a Content-Length over it is refused before the first byte is read)."""
    precheck_length(response, cap)
    decoder = BoundedDecoder(response.headers.get("content-encoding", ""), cap)
    async for chunk in response.aiter_raw():
        yield decoder.feed(chunk)
    yield decoder.finish()


async def read_capped(response: httpx.Response, cap: int) -> bytes:
    return b"".join([chunk async for chunk in decoded_chunks(response, cap)])


async def download(http: httpx.AsyncClient, url: str, destination: Path, cap: int, deadline: float) -> None:
    """Stream `url` into `destination` under `cap` bytes and `deadline` seconds. Raises
    TooLarge, BadEncoding, TimeoutError, httpx.HTTPError or OSError."""
    async with asyncio.timeout(deadline):
        async with http.stream("GET", url, headers={"Accept-Encoding": ACCEPT_ENCODING}) as response:
            if response.status_code != 200:
                raise httpx.HTTPStatusError(f"HTTP {response.status_code}", request=response.request,
                                            response=response)
            with destination.open("wb") as handle:
                async for chunk in decoded_chunks(response, cap):
                    handle.write(chunk)
