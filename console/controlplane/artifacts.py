"""Plugin artifacts over HTTP: streamed to a file under a byte cap and a deadline (bounded.py).
The sha256 pin is checked by the caller on the file, before anything is unpacked."""

from __future__ import annotations

from pathlib import Path

import httpx

from console.controlplane.bounded import BadEncoding, TooLarge, download
from console.remote.plugin_error import PluginError

ARTIFACT_DEADLINE = 120.0


class ArtifactFetcher:
    def __init__(self, deadline: float = ARTIFACT_DEADLINE) -> None:
        self.deadline = deadline
        self._http: httpx.AsyncClient | None = None

    async def __call__(self, url: str, destination: Path, cap: int) -> None:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=httpx.Timeout(10.0), trust_env=False)
        try:
            await download(self._http, url, destination, cap, self.deadline)
        except TooLarge as exc:
            raise PluginError("plugin_install_failed", f"{url}: {exc}") from None
        except BadEncoding as exc:
            raise PluginError("plugin_install_failed", f"{url}: {exc}") from None
        except TimeoutError:
            raise PluginError("plugin_install_failed", f"{url}: no complete download within {self.deadline:g} s") \
                from None
        except httpx.HTTPStatusError as exc:
            raise PluginError("plugin_install_failed", f"{url}: HTTP {exc.response.status_code}") from None
        except httpx.HTTPError as exc:
            raise PluginError("plugin_install_failed", f"{url}: {type(exc).__name__}: {exc}") from None

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None
