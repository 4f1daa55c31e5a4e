"""The host's control-plane client (httpx, async). Every call has connect/read timeouts and an
overall deadline; every request, retries included, carries a fresh DPoP proof; a rejected host
access token is refreshed once. Tokens are returned to the caller, never logged."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from console.controlplane.bounded import ACCEPT_ENCODING, BadEncoding, TooLarge, read_capped
from console.controlplane.classify import Provenance, Verdict, classify
from console.controlplane.dpop import make_proof, public_jwk
from console.core.records import View

TIMEOUT = httpx.Timeout(connect=3.0, read=10.0, write=10.0, pool=3.0)
DEADLINE = 30.0


class Answer(View, frozen=True):
    """One exchange as the classifier needs it: a status, or the kind of failure there was instead."""

    status: int | None
    body: dict[str, Any]
    failure: str | None = None  # "timeout" | "network" when there was no status
    retry_after: str | None = None

    def verdict(self, provenance: Provenance | None = None) -> Verdict:
        return classify(self.status, self.failure, provenance)


class ConfigFetch(View, frozen=True):
    """One config GET: the status and, for a 200, the document bytes and their strong ETag."""

    status: int | None
    etag: str | None = None
    body: bytes | None = None
    error: str | None = None  # document_too_large | config_invalid | network_error
    retry_after: str | None = None
    detail: str = ""


Reply = TypeVar("Reply", Answer, ConfigFetch)


class ControlPlaneClient:
    def __init__(self, base_url: str, key: Ed25519PrivateKey, *, deadline: float = DEADLINE,
                 timeout: httpx.Timeout = TIMEOUT) -> None:
        self.base_url = base_url.rstrip("/")
        self.key = key
        self.deadline = deadline
        self.http = httpx.AsyncClient(timeout=timeout, trust_env=False)
        self.refresh_token: str | None = None
        self._access: tuple[str, float] | None = None

    async def close(self) -> None:
        await self.http.aclose()

    def _auth(self, method: str, url: str, *, proof: bool, token: str | None, scheme: str = "DPoP") -> dict[str, str]:
        """A fresh DPoP proof (bound to the token when it is a DPoP one) and the Authorization header."""
        headers = {}
        if proof:
            headers["DPoP"] = make_proof(self.key, method, url, access_token=token if scheme == "DPoP" else None)
        if token is not None:
            headers["Authorization"] = f"{scheme} {token}"
        return headers

    async def _send(self, method: str, path: str, *, proof: bool, token: str | None = None,
                    scheme: str = "DPoP", body: dict[str, Any] | None = None) -> Answer:
        url = self.base_url + path
        headers = self._auth(method, url, proof=proof, token=token, scheme=scheme)
        try:
            async with asyncio.timeout(self.deadline):
                response = await self.http.request(method, url, headers=headers, json=body)
        except (TimeoutError, httpx.TimeoutException):
            return Answer(None, {}, "timeout")
        except httpx.TransportError:
            return Answer(None, {}, "network")
        try:
            data = response.json()
        except ValueError:
            data = {}
        return Answer(response.status_code, data if isinstance(data, dict) else {},
                      retry_after=response.headers.get("retry-after"))

    # -- host identity ---------------------------------------------------------------------------

    async def join(self, join_token: str, host_name: str) -> Answer:
        answer = await self._send("POST", "/v1/join", proof=False, body={
            "join_token": join_token, "host_name": host_name, "jwk": public_jwk(self.key.public_key())})
        if answer.status == 201:
            self.refresh_token = str(answer.body["refresh_token"])
        return answer

    async def _access_token(self, *, renew: bool = False) -> str | None:
        if not renew and self._access is not None and self._access[1] > time.time() + 30:
            return self._access[0]
        if self.refresh_token is None:
            return None
        answer = await self._send("POST", "/v1/token", proof=True,
                                  body={"grant_type": "refresh_token", "refresh_token": self.refresh_token})
        if answer.status != 200:
            self._access = None
            return None
        self._access = (str(answer.body["access_token"]), time.time() + float(answer.body.get("expires_in", 0)))
        return self._access[0]

    async def _refreshing(self, call: Callable[[str | None], Awaitable[Reply]]) -> Reply:
        """A DPoP-authenticated host call; a rejected access token is refreshed once (each attempt
        builds its own request, so a new proof)."""
        reply = await call(await self._access_token())
        if reply.status == 401:
            reply = await call(await self._access_token(renew=True))
        return reply

    async def _host_call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Answer:
        return await self._refreshing(lambda token: self._send(method, path, proof=True, token=token, body=body))

    async def get_config(self, host_id: str, etag: str | None, cap: int) -> ConfigFetch:
        """`GET /v1/hosts/{id}/config` with If-None-Match; a 401 refreshes the access token once.
        The caller bounds the whole exchange (the poll deadline) and may cancel it."""
        return await self._refreshing(lambda token: self._get_config(host_id, etag, cap, token))

    async def _get_config(self, host_id: str, etag: str | None, cap: int, token: str | None) -> ConfigFetch:
        url = f"{self.base_url}/v1/hosts/{host_id}/config"
        headers = {**self._auth("GET", url, proof=True, token=token), "Accept-Encoding": ACCEPT_ENCODING}
        if etag:
            headers["If-None-Match"] = etag
        try:
            async with self.http.stream("GET", url, headers=headers) as response:
                status, retry_after = response.status_code, response.headers.get("retry-after")
                if status != 200:
                    return ConfigFetch(status, retry_after=retry_after, etag=response.headers.get("etag"))
                served = response.headers.get("etag")
                try:
                    body = await read_capped(response, cap)
                except TooLarge as exc:
                    return ConfigFetch(status, served, error="document_too_large", detail=str(exc))
                except BadEncoding as exc:
                    return ConfigFetch(status, served, error="config_invalid", detail=str(exc))
                return ConfigFetch(status, served, body)
        except httpx.TimeoutException:
            return ConfigFetch(None, error="timed_out", detail="the control plane did not answer in time")
        except httpx.TransportError as exc:
            return ConfigFetch(None, error="network_error", detail=f"{type(exc).__name__}: {exc}"[:200])

    async def host_heartbeat(self, host_id: str) -> Answer:
        return await self._host_call("POST", f"/v1/hosts/{host_id}/heartbeat", {})

    async def create_loop(self, name: str) -> Answer:
        return await self._host_call("POST", "/v1/loops", {"name": name})

    # -- loops -----------------------------------------------------------------------------------

    async def loop_heartbeat(self, loop_id: str, runner_token: str, run_id: str | None, state: str) -> Answer:
        return await self._send("POST", f"/v1/loops/{loop_id}/heartbeat", proof=False, token=runner_token,
                                scheme="Bearer", body={"run_id": run_id, "state": state})

    async def revive_loop(self, loop_id: str, run_id: str | None, state: str) -> Answer:
        """Proof-of-possession heartbeat by the host key the loop is bound to (no runner token)."""
        return await self._send("POST", f"/v1/loops/{loop_id}/heartbeat", proof=True,
                                body={"run_id": run_id, "state": state})
