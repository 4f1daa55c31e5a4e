"""The reference control plane (DESIGN section 6) for the demo and hermetic tests.

`loopctl controlplane serve [--host 127.0.0.1] [--port N] [--state FILE]`. A real ASGI stack
(Starlette on uvicorn), loopback by default. Host calls are authenticated with DPoP; admin calls
(`/admin/...`, loopback only) let tests and the demo mint join tokens, expire, pause, time out,
delete or retire loops, and inject 5xx, 429 with Retry-After, and stalls.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from console.controlplane.dpop import ProofError, ReplayCache, thumbprint, verify_proof
from console.engine.atomic import atomic_write_json

log = logging.getLogger("loopctl.controlplane")

ACCESS_TTL = 600.0
RUNNER_TTL = 3600.0
POLL_INTERVAL = 300


@dataclass
class HostRecord:
    id: str
    name: str
    jkt: str
    refresh_token: str
    status: str = "provisioning"


@dataclass
class LoopRecord:
    id: str
    host_id: str
    name: str
    jkt: str
    runner_token: str
    jti: str
    expires_at: float
    status: str = "active"  # active | paused | timed_out
    deleted: bool = False  # 404 from now on
    gone: bool = False  # 410 from now on
    revivals: int = 0  # proof-of-possession heartbeats received (tests prove none was sent)


@dataclass
class Fault:
    prefix: str
    status: int = 0  # 0: no status injected
    retry_after: str | None = None
    stall_seconds: float = 0.0
    times: int = 1


@dataclass
class State:
    join_tokens: set[str] = field(default_factory=set)
    hosts: dict[str, HostRecord] = field(default_factory=dict)
    loops: dict[str, LoopRecord] = field(default_factory=dict)
    access: dict[str, tuple[str, str, float]] = field(default_factory=dict)  # token -> (host_id, jkt, expires_at)
    faults: list[Fault] = field(default_factory=list)


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=headers)


class ControlPlane:
    def __init__(self, state_file: Path | None = None) -> None:
        self.state = State()
        self.state_file = state_file
        self.replay = ReplayCache()
        self._load()

    # -- persistence (optional) ------------------------------------------------------------------

    def _load(self) -> None:
        if self.state_file is None or not self.state_file.exists():
            return
        data = json.loads(self.state_file.read_text())
        self.state.join_tokens = set(data.get("join_tokens", []))
        self.state.hosts = {k: HostRecord(**v) for k, v in data.get("hosts", {}).items()}
        self.state.loops = {k: LoopRecord(**v) for k, v in data.get("loops", {}).items()}

    def save(self) -> None:
        if self.state_file is None:
            return
        atomic_write_json(self.state_file, {
            "join_tokens": sorted(self.state.join_tokens),
            "hosts": {k: asdict(v) for k, v in self.state.hosts.items()},
            "loops": {k: asdict(v) for k, v in self.state.loops.items()},
        }, mode=0o600)

    # -- helpers ---------------------------------------------------------------------------------

    def mint_join_token(self) -> str:
        token = "jt_" + secrets.token_urlsafe(24)
        self.state.join_tokens.add(token)
        self.save()
        return token

    def _proof(self, request: Request, *, token: str | None, jkt: str | None) -> str:
        proof = request.headers.get("dpop")
        if not proof:
            raise ProofError("no DPoP proof")
        verified = verify_proof(proof, method=request.method, url=str(request.url), now=time.time(),
                                replay=self.replay, access_token=token, expected_jkt=jkt)
        return verified.jkt

    def _host(self, request: Request) -> HostRecord:
        auth = request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme != "DPoP" or not token:
            raise ProofError("no DPoP access token")
        grant = self.state.access.get(token)
        if grant is None or grant[2] < time.time():
            raise ProofError("access token unknown or expired")
        host_id, jkt, _ = grant
        self._proof(request, token=token, jkt=jkt)
        return self.state.hosts[host_id]

    # -- endpoints -------------------------------------------------------------------------------

    async def join(self, request: Request) -> Response:
        body = await _json(request)
        token, name, jwk = body.get("join_token"), body.get("host_name"), body.get("jwk")
        if not isinstance(token, str) or token not in self.state.join_tokens:
            return _error(401, "invalid_join_token", "join token unknown or already used")
        if not isinstance(name, str) or not isinstance(jwk, dict) or jwk.get("kty") != "OKP" or "d" in jwk:
            return _error(400, "invalid_request", "host_name and a public Ed25519 jwk are required")
        self.state.join_tokens.discard(token)
        host = HostRecord(id="h_" + secrets.token_hex(6), name=name, jkt=thumbprint(jwk),
                          refresh_token="rt_" + secrets.token_urlsafe(32))
        self.state.hosts[host.id] = host
        self.save()
        return JSONResponse({"host_id": host.id, "refresh_token": host.refresh_token,
                             "poll_interval_seconds": POLL_INTERVAL}, status_code=201)

    async def token(self, request: Request) -> Response:
        body = await _json(request)
        if body.get("grant_type") != "refresh_token":
            return _error(400, "unsupported_grant_type", "grant_type must be refresh_token")
        host = next((h for h in self.state.hosts.values() if h.refresh_token == body.get("refresh_token")), None)
        if host is None:
            return _error(401, "invalid_grant", "refresh token unknown")
        try:
            self._proof(request, token=None, jkt=host.jkt)
        except ProofError as exc:
            return _error(401, "invalid_dpop_proof", str(exc))
        access = "at_" + secrets.token_urlsafe(32)
        self.state.access[access] = (host.id, host.jkt, time.time() + ACCESS_TTL)
        return JSONResponse({"access_token": access, "token_type": "DPoP", "expires_in": int(ACCESS_TTL)})

    def _authorized(self, request: Request) -> HostRecord | Response:
        """The host behind the request's DPoP token, or the error answer; checks the path's host id."""
        try:
            host = self._host(request)
        except ProofError as exc:
            return _error(401, "unauthorized", str(exc))
        if "host_id" in request.path_params and host.id != request.path_params["host_id"]:
            return _error(404, "not_found", "no such host for this token")
        return host

    async def host_heartbeat(self, request: Request) -> Response:
        host = self._authorized(request)
        if isinstance(host, Response):
            return host
        previous = host.status
        if host.status == "provisioning":
            host.status = "online"
            self.save()
        return JSONResponse({"status": host.status, "previous_status": previous})

    async def host_config(self, request: Request) -> Response:
        host = self._authorized(request)
        if isinstance(host, Response):
            return host
        return _error(404, "no_remote_config", "this host has no remote config")

    async def create_loop(self, request: Request) -> Response:
        host = self._authorized(request)
        if isinstance(host, Response):
            return host
        body = await _json(request)
        loop = LoopRecord(id="l_" + secrets.token_hex(6), host_id=host.id, name=str(body.get("name", "")),
                          jkt=host.jkt, runner_token="rk_" + secrets.token_urlsafe(32),
                          jti=secrets.token_hex(8), expires_at=time.time() + RUNNER_TTL)
        self.state.loops[loop.id] = loop
        self.save()
        return JSONResponse({"loop_id": loop.id, "runner_token": loop.runner_token, "jti": loop.jti,
                             "expires_at": loop.expires_at}, status_code=201)

    async def loop_heartbeat(self, request: Request) -> Response:
        loop = self.state.loops.get(request.path_params["loop_id"])
        auth = request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if loop is not None and request.headers.get("dpop") and not token:
            loop.revivals += 1  # every revival request received, whatever it is answered
        if loop is None or loop.deleted:
            return _error(404, "not_found", "no such loop")
        if loop.gone:
            return _error(410, "gone", "the loop was retired")
        if scheme == "Bearer" and secrets.compare_digest(token, loop.runner_token) and loop.expires_at > time.time():
            return JSONResponse({"status": loop.status})
        if request.headers.get("dpop") and not token:
            try:  # proof-of-possession revival: the host key the loop is bound to
                self._proof(request, token=None, jkt=loop.jkt)
            except ProofError as exc:
                return _error(401, "invalid_dpop_proof", str(exc))
            loop.runner_token = "rk_" + secrets.token_urlsafe(32)
            loop.jti = secrets.token_hex(8)
            loop.expires_at = time.time() + RUNNER_TTL
            self.save()
            return JSONResponse({"revived": True, "status": loop.status, "runner_token": loop.runner_token,
                                 "jti": loop.jti, "expires_at": loop.expires_at})
        return _error(401, "unauthorized", "runner token unknown or expired")

    # -- admin (loopback: tests and the demo) ----------------------------------------------------------

    async def admin(self, request: Request) -> Response:
        if request.client is None or request.client.host not in ("127.0.0.1", "::1"):
            return _error(403, "forbidden", "admin calls are loopback only")
        what = request.path_params["what"]
        body = await _json(request)
        if what == "join-tokens":
            return JSONResponse({"join_token": self.mint_join_token()}, status_code=201)
        if what == "faults":
            self.state.faults.append(Fault(prefix=str(body.get("prefix", "/")), status=int(body.get("status", 0)),
                                           retry_after=body.get("retry_after"),
                                           stall_seconds=float(body.get("stall_seconds", 0)),
                                           times=int(body.get("times", 1))))
            return JSONResponse({"faults": len(self.state.faults)})
        loop = self.state.loops.get(str(body.get("loop_id", "")))
        if loop is None:
            return _error(404, "not_found", "no such loop")
        if what == "inspect":  # never the token itself
            return JSONResponse({"loop_id": loop.id, "status": loop.status, "revivals": loop.revivals,
                                 "expires_at": loop.expires_at, "deleted": loop.deleted, "gone": loop.gone})
        changes = {"expire-token": lambda: setattr(loop, "expires_at", 0.0),
                   "pause": lambda: setattr(loop, "status", "paused"),
                   "resume": lambda: setattr(loop, "status", "active"),
                   "time-out": lambda: setattr(loop, "status", "timed_out"),
                   "delete": lambda: setattr(loop, "deleted", True),
                   "gone": lambda: setattr(loop, "gone", True)}
        if what not in changes:
            return _error(404, "not_found", f"no admin call {what!r}")
        changes[what]()
        self.save()
        return JSONResponse({"loop_id": loop.id, "status": loop.status})

    # -- fault injection ---------------------------------------------------------------------------------

    def app(self) -> Starlette:
        routes = [
            Route("/v1/join", self.join, methods=["POST"]),
            Route("/v1/token", self.token, methods=["POST"]),
            Route("/v1/hosts/{host_id}/heartbeat", self.host_heartbeat, methods=["POST"]),
            Route("/v1/hosts/{host_id}/config", self.host_config, methods=["GET"]),
            Route("/v1/loops", self.create_loop, methods=["POST"]),
            Route("/v1/loops/{loop_id}/heartbeat", self.loop_heartbeat, methods=["POST"]),
            Route("/admin/{what}", self.admin, methods=["POST"]),
        ]
        plane = self

        async def faults(request: Request, call_next: Any) -> Response:
            fault = next((f for f in plane.state.faults if request.url.path.startswith(f.prefix) and f.times > 0
                          and not request.url.path.startswith("/admin")), None)
            if fault is not None:
                fault.times -= 1
                if fault.stall_seconds:
                    await asyncio.sleep(fault.stall_seconds)
                if fault.status:
                    headers = {"Retry-After": fault.retry_after} if fault.retry_after else None
                    return _error(fault.status, "injected", "fault injected by the admin", headers)
            response: Response = await call_next(request)
            return response

        return Starlette(routes=routes, middleware=[Middleware(BaseHTTPMiddleware, dispatch=faults)])


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def serve(host: str, port: int, state_file: Path | None) -> int:
    import uvicorn  # noqa: PLC0415

    plane = ControlPlane(state_file)
    token = plane.mint_join_token()
    print(f"loopctl control plane on http://{host}:{port}  join token: {token}", flush=True)
    uvicorn.run(plane.app(), host=host, port=port, log_level="warning")
    return 0
