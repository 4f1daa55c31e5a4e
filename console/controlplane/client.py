"""The host's control-plane client (httpx, async). Every call has connect/read timeouts and an
overall deadline, reads its answer under a byte cap (streamed, inflated here: bounded.py) and
decodes a success into its typed record (answers.py); a wrong shape is one `bad_answer` Answer,
never an exception. Every request, retries included, carries a fresh DPoP proof; a rejected host
access token is refreshed once. Tokens are returned to the caller, never logged.

`bad_answers` keeps, per call, what was wrong with its last answer until that call is answered
well again: the link shows it on the tray (`control_plane_bad_answer`)."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from console.controlplane import answers
from console.controlplane.answers import (
    ANSWER_CAP,
    AccessToken,
    BadAnswer,
    HostBeat,
    Joined,
    LoopBeat,
    LoopGrant,
    Revived,
)
from console.controlplane.bounded import ACCEPT_ENCODING, BadEncoding, TooLarge, read_capped
from console.controlplane.classify import Provenance, Verdict, classify
from console.controlplane.dpop import make_proof, public_jwk
from console.core.printable import printable
from console.core.records import View

log = logging.getLogger("loopctl.controlplane")
TIMEOUT = httpx.Timeout(connect=3.0, read=10.0, write=10.0, pool=3.0)
DEADLINE = 30.0
ERROR_BODY_CAP = 16 * 1024  # an error status's body: only its message is shown
# RFC 9110 entity-tag, strong form only: a quoted run of etagc (no W/ prefix, no quote, no control).
STRONG_ETAG = re.compile(r'^"[\x21\x23-\x7e\x80-\xff]{1,256}"$')

R = TypeVar("R")


class Answer(View, Generic[R], frozen=True):
    """One exchange as the caller needs it: a status and the decoded success record, or the kind of
    failure there was instead."""

    status: int | None
    record: R | None = None
    failure: str | None = None  # "timeout" | "network" (no status) | "bad_answer" (a status, a wrong body)
    problem: str = ""  # bad_answer: what was wrong; an error status: the control plane's message
    retry_after: str | None = None

    def verdict(self, provenance: Provenance | None = None) -> Verdict:
        return classify(self.status, self.failure, provenance)


class ConfigFetch(View, frozen=True):
    """One config GET: the status and, for a 200, the document bytes and their strong ETag."""

    status: int | None
    etag: str | None = None
    body: bytes | None = None
    error: str | None = None  # document_too_large | config_invalid | network_error | timed_out | bad_answer
    retry_after: str | None = None
    detail: str = ""


Reply = TypeVar("Reply", bound="Answer[Any] | ConfigFetch")


def strong_etag(value: str | None) -> bool:
    return value is not None and STRONG_ETAG.match(value) is not None


class ControlPlaneClient:
    def __init__(self, base_url: str, key: Ed25519PrivateKey, *, deadline: float = DEADLINE,
                 timeout: httpx.Timeout = TIMEOUT, cap: int = ANSWER_CAP, log_bad_answers: bool = True) -> None:
        self.base_url = base_url.rstrip("/")
        self.key = key
        self.deadline = deadline
        self.cap = cap
        self.http = httpx.AsyncClient(timeout=timeout, trust_env=False)
        self.refresh_token: str | None = None
        self._access: tuple[str, float] | None = None
        self.bad_answers: dict[str, str] = {}  # call -> what was wrong with its last answer
        self.log_bad_answers = log_bad_answers  # the engine's journal wants them; `loopctl join` says it itself

    async def close(self) -> None:
        await self.http.aclose()

    def _auth(self, method: str, url: str, *, proof: bool, token: str | None, scheme: str = "DPoP") -> dict[str, str]:
        """A fresh DPoP proof (bound to the token when it is a DPoP one) and the Authorization header."""
        headers = {"Accept-Encoding": ACCEPT_ENCODING}
        if proof:
            headers["DPoP"] = make_proof(self.key, method, url, access_token=token if scheme == "DPoP" else None)
        if token is not None:
            headers["Authorization"] = f"{scheme} {token}"
        return headers

    def _note(self, call: str, problem: str | None) -> None:
        """Remember (or, with None, forget) what was wrong with `call`'s last answer."""
        if problem is None:
            self.bad_answers.pop(call, None)
        elif self.bad_answers.get(call) != problem:
            if self.log_bad_answers:
                log.warning("control plane %s: bad answer to %s: %s", self.base_url, call, problem)
            self.bad_answers[call] = problem

    async def _send(self, call: str, method: str, path: str, record: type[answers.Record], *, proof: bool,
                    token: str | None = None, scheme: str = "DPoP",
                    body: dict[str, Any] | None = None) -> Answer[answers.Record]:
        """One request: the body read under the cap within the deadline, a 2xx decoded as `record`."""
        url = self.base_url + path
        headers = self._auth(method, url, proof=proof, token=token, scheme=scheme)
        status: int | None = None
        retry_after: str | None = None
        try:
            async with asyncio.timeout(self.deadline):
                async with self.http.stream(method, url, headers=headers, json=body) as response:
                    status, retry_after = response.status_code, response.headers.get("retry-after")
                    raw = await read_capped(response, self.cap if 200 <= status < 300 else ERROR_BODY_CAP)
        except (TimeoutError, httpx.TimeoutException):
            return Answer(None, failure="timeout")
        except (TooLarge, BadEncoding) as exc:
            return self._bad(call, status, str(exc), retry_after)
        except httpx.HTTPError as exc:  # transport failures, and a protocol error mid-body
            if status is not None:
                return self._bad(call, status, f"broken answer ({type(exc).__name__})", retry_after)
            return Answer(None, failure="network")
        assert status is not None
        if not 200 <= status < 300:
            return Answer(status, problem=printable(answers.refusal_message(raw), lines=False),
                          retry_after=retry_after)
        try:
            decoded = answers.decode(call, raw, record)
        except BadAnswer as exc:
            return self._bad(call, status, exc.problem, retry_after)
        self._note(call, None)
        return Answer(status, decoded, retry_after=retry_after)

    def _bad(self, call: str, status: int | None, problem: str, retry_after: str | None) -> Answer[Any]:
        problem = printable(f"HTTP {status}: {problem}" if status is not None else problem, lines=False)
        self._note(call, problem)
        return Answer(status, failure="bad_answer", problem=problem, retry_after=retry_after)

    # -- host identity ---------------------------------------------------------------------------

    async def join(self, join_token: str, host_name: str) -> Answer[Joined]:
        answer = await self._send("join", "POST", "/v1/join", Joined, proof=False, body={
            "join_token": join_token, "host_name": host_name, "jwk": public_jwk(self.key.public_key())})
        if answer.status == 201 and answer.record is not None:
            self.refresh_token = answer.record.refresh_token
        return answer

    async def _access_token(self, *, renew: bool = False) -> str | Answer[Any]:
        """A host access token, or the answer that said why there is none (the caller's answer then)."""
        if not renew and self._access is not None and self._access[1] > time.time() + 30:
            return self._access[0]
        if self.refresh_token is None:
            return Answer(401, problem="no refresh token")
        answer = await self._send("token", "POST", "/v1/token", AccessToken, proof=True,
                                  body={"grant_type": "refresh_token", "refresh_token": self.refresh_token})
        if answer.record is None:
            self._access = None
            return answer
        self._access = (answer.record.access_token, time.time() + answer.record.expires_in)
        return self._access[0]

    async def _refreshing(self, call: Callable[[str], Awaitable[Reply]],
                          failed: Callable[[Answer[Any]], Reply]) -> Reply:
        """A DPoP-authenticated host call; a rejected access token is refreshed once (each attempt
        builds its own request, so a new proof). No token, no call: the token's answer is the reply."""
        token = await self._access_token()
        if isinstance(token, Answer):
            return failed(token)
        reply = await call(token)
        if reply.status == 401:
            token = await self._access_token(renew=True)
            if isinstance(token, Answer):
                return failed(token)
            reply = await call(token)
        return reply

    async def get_config(self, host_id: str, etag: str | None, cap: int) -> ConfigFetch:
        """`GET /v1/hosts/{id}/config` with If-None-Match; a 401 refreshes the access token once.
        The caller bounds the whole exchange (the poll deadline) and may cancel it."""
        return await self._refreshing(lambda token: self._get_config(host_id, etag, cap, token), _config_failure)

    async def _get_config(self, host_id: str, etag: str | None, cap: int, token: str | None) -> ConfigFetch:
        url = f"{self.base_url}/v1/hosts/{host_id}/config"
        headers = self._auth("GET", url, proof=True, token=token)
        if etag:
            headers["If-None-Match"] = etag
        try:
            async with self.http.stream("GET", url, headers=headers) as response:
                status, retry_after = response.status_code, response.headers.get("retry-after")
                if status != 200:
                    return ConfigFetch(status, retry_after=retry_after, etag=response.headers.get("etag"))
                served = response.headers.get("etag")
                if not strong_etag(served):  # the document is not even read: nothing to pin it by
                    said = "no ETag" if served is None else f"ETag {printable(served[:80], lines=False)!r}"
                    return ConfigFetch(status, None, error="config_invalid",
                                       detail=f"{said}: a strong entity tag is required (a quoted opaque string, "
                                              f"no W/)")
                try:
                    body = await read_capped(response, cap)
                except TooLarge as exc:
                    return ConfigFetch(status, served, error="document_too_large", detail=str(exc))
                except BadEncoding as exc:
                    return ConfigFetch(status, served, error="config_invalid", detail=str(exc))
                return ConfigFetch(status, served, body)
        except httpx.TimeoutException:
            return ConfigFetch(None, error="timed_out", detail="the control plane did not answer in time")
        except httpx.HTTPError as exc:
            return ConfigFetch(None, error="network_error", detail=f"{type(exc).__name__}: {exc}"[:200])

    async def host_heartbeat(self, host_id: str) -> Answer[HostBeat]:
        path = f"/v1/hosts/{host_id}/heartbeat"
        return await self._refreshing(
            lambda token: self._send("host heartbeat", "POST", path, HostBeat, proof=True, token=token, body={}),
            _as_answer)

    async def create_loop(self, name: str) -> Answer[LoopGrant]:
        return await self._refreshing(
            lambda token: self._send("loop create", "POST", "/v1/loops", LoopGrant, proof=True, token=token,
                                     body={"name": name}),
            _as_answer)

    # -- loops -----------------------------------------------------------------------------------

    async def loop_heartbeat(self, loop_id: str, runner_token: str, run_id: str | None,
                             state: str) -> Answer[LoopBeat]:
        return await self._send("loop heartbeat", "POST", f"/v1/loops/{loop_id}/heartbeat", LoopBeat, proof=False,
                                token=runner_token, scheme="Bearer", body={"run_id": run_id, "state": state})

    async def revive_loop(self, loop_id: str, run_id: str | None, state: str) -> Answer[Revived]:
        """Proof-of-possession heartbeat by the host key the loop is bound to (no runner token)."""
        return await self._send("PoP revival", "POST", f"/v1/loops/{loop_id}/heartbeat", Revived, proof=True,
                                body={"run_id": run_id, "state": state})


def _as_answer(failed: Answer[Any]) -> Answer[Any]:
    return failed


def _config_failure(failed: Answer[Any]) -> ConfigFetch:
    """The token call failed, so the config GET was never sent: the poll record says why."""
    if failed.failure == "bad_answer":
        return ConfigFetch(None, error="bad_answer", detail=f"token: {failed.problem}")
    if failed.status is None:
        error = "timed_out" if failed.failure == "timeout" else "network_error"
        return ConfigFetch(None, error=error, detail=f"token: {failed.failure}")
    return ConfigFetch(failed.status, retry_after=failed.retry_after)
