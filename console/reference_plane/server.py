"""The reference control plane (DESIGN section 6) for the demo and hermetic tests.

`loopctl controlplane serve [--host 127.0.0.1] [--port N] [--state FILE]`. A real ASGI stack
(Starlette on uvicorn), loopback by default. Host calls are authenticated with DPoP; admin calls
(`/admin/...`, loopback only) let tests and the demo mint join tokens, expire, pause, time out,
delete or retire loops, and inject 5xx, 429 with Retry-After, and stalls.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import json
import logging
import secrets
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from console.controlplane.dpop import ProofError, ReplayCache, thumbprint, verify_proof
from console.core.atomic import atomic_write_json

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
class ServedConfig:
    """The document served to one host, and how (the hostile modes serve tests)."""

    body: str  # the bytes as text: normally JSON, anything for the invalid-JSON case
    etag: str
    encoding: str = ""  # "gzip": sent compressed
    chunked: bool = False  # streamed without a Content-Length
    stall_after_bytes: int = -1  # >= 0: send this many bytes, then stall for stall_seconds
    stall_seconds: float = 0.0
    bomb_bytes: int = 0  # > 0: serve gzip of this many zero bytes instead of body


@dataclass
class State:
    join_tokens: set[str] = field(default_factory=set)
    hosts: dict[str, HostRecord] = field(default_factory=dict)
    loops: dict[str, LoopRecord] = field(default_factory=dict)
    access: dict[str, tuple[str, str, float]] = field(default_factory=dict)  # token -> (host_id, jkt, expires_at)
    faults: list[Fault] = field(default_factory=list)
    configs: dict[str, ServedConfig] = field(default_factory=dict)  # host id -> its document
    artifacts: dict[str, bytes] = field(default_factory=dict)  # name -> bytes, served at /artifacts/{name}
    config_gets: int = 0


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
        self.state.configs = {k: ServedConfig(**v) for k, v in data.get("configs", {}).items()}

    def save(self) -> None:
        if self.state_file is None:
            return
        atomic_write_json(self.state_file, {
            "join_tokens": sorted(self.state.join_tokens),
            "hosts": {k: asdict(v) for k, v in self.state.hosts.items()},
            "loops": {k: asdict(v) for k, v in self.state.loops.items()},
            "configs": {k: asdict(v) for k, v in self.state.configs.items()},
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
        self.state.config_gets += 1
        host = self._authorized(request)
        if isinstance(host, Response):
            return host
        served = self.state.configs.get(host.id)
        if served is None:
            return _error(404, "no_remote_config", "this host has no remote config")
        if request.headers.get("if-none-match") == served.etag:
            return Response(status_code=304, headers={"ETag": served.etag})
        body = served.body.encode()
        headers = {"ETag": served.etag, "Content-Type": "application/json"}
        if served.bomb_bytes:
            body = _gzip_zeros(served.bomb_bytes)
            headers["Content-Encoding"] = "gzip"
        elif served.encoding == "gzip":
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        if served.chunked or served.stall_after_bytes >= 0:
            return StreamingResponse(_trickle(body, served), headers=headers)
        return Response(body, headers=headers)

    async def artifact(self, request: Request) -> Response:
        data = self.state.artifacts.get(request.path_params["name"])
        if data is None:
            return _error(404, "not_found", "no such artifact")
        return Response(data, media_type="application/octet-stream")

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
        if what == "set-config":
            return self._set_config(body)
        if what == "publish":
            name, data = str(body["name"]), base64.b64decode(str(body["content_b64"]))
            self.state.artifacts[name] = data
            return JSONResponse({"url": f"{request.base_url}artifacts/{name}",
                                 "sha256": hashlib.sha256(data).hexdigest()}, status_code=201)
        if what == "create-loop":  # a loop made elsewhere, for a person to run as a `user` loop
            owner = self.state.hosts.get(str(body.get("host_id", "")))
            if owner is None:
                return _error(404, "not_found", "no such host")
            made = LoopRecord(id="l_" + secrets.token_hex(6), host_id=owner.id, name=str(body.get("name", "")),
                              jkt=owner.jkt, runner_token="rk_" + secrets.token_urlsafe(32),
                              jti=secrets.token_hex(8), expires_at=time.time() + RUNNER_TTL)
            self.state.loops[made.id] = made
            self.save()
            return JSONResponse({"loop_id": made.id}, status_code=201)
        if what == "config-gets":
            return JSONResponse({"config_gets": self.state.config_gets})
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

    def _set_config(self, body: dict[str, Any]) -> Response:
        host_id = str(body.get("host_id", ""))
        if host_id not in self.state.hosts:
            return _error(404, "not_found", "no such host")
        if body.get("document") is None and body.get("raw") is None:
            self.state.configs.pop(host_id, None)  # back to "no remote config"
            self.save()
            return JSONResponse({"host_id": host_id, "etag": None})
        text = body["raw"] if body.get("raw") is not None else json.dumps(body["document"], sort_keys=True)
        etag = body.get("etag") or '"' + hashlib.sha256(text.encode()).hexdigest()[:20] + '"'
        self.state.configs[host_id] = ServedConfig(
            body=text, etag=etag, encoding=str(body.get("encoding", "")), chunked=bool(body.get("chunked")),
            stall_after_bytes=int(body.get("stall_after_bytes", -1)), stall_seconds=float(body.get("stall_seconds", 0)),
            bomb_bytes=int(body.get("bomb_bytes", 0)))
        self.save()
        return JSONResponse({"host_id": host_id, "etag": etag})

    # -- fault injection ---------------------------------------------------------------------------------

    def app(self) -> Starlette:
        routes = [
            Route("/v1/join", self.join, methods=["POST"]),
            Route("/v1/token", self.token, methods=["POST"]),
            Route("/v1/hosts/{host_id}/heartbeat", self.host_heartbeat, methods=["POST"]),
            Route("/v1/hosts/{host_id}/config", self.host_config, methods=["GET"]),
            Route("/v1/loops", self.create_loop, methods=["POST"]),
            Route("/v1/loops/{loop_id}/heartbeat", self.loop_heartbeat, methods=["POST"]),
            Route("/artifacts/{name}", self.artifact, methods=["GET"]),
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


def _gzip_zeros(size: int) -> bytes:
    """A gzip bomb: `size` zero bytes compress about a thousand to one."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b"\0" * (1 << 20)
    parts = [compressor.compress(block) for _ in range(size // len(block))]
    parts += [compressor.compress(b"\0" * (size % len(block))), compressor.flush()]
    return b"".join(parts)


async def _trickle(body: bytes, served: ServedConfig) -> Any:
    """Chunked, 64 KiB at a time; with a stall point, the body stops there once for stall_seconds."""
    sent, stalled, step = 0, served.stall_after_bytes < 0, 64 * 1024
    while sent < len(body):
        if not stalled and sent >= served.stall_after_bytes:
            stalled = True
            await asyncio.sleep(served.stall_seconds)
        end = sent + step if stalled else min(sent + step, served.stall_after_bytes)
        chunk = body[sent:end]
        sent += len(chunk)
        yield chunk


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
