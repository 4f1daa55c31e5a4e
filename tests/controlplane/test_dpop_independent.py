"""The DPoP proofs the client sends, checked by an independent JOSE implementation (joserfc), per
RFC 9449 section 4.3: typ, alg, a public-only jwk, the signature by that key, htm, htu, iat, a
unique jti, and ath binding the access token. Captured on the wire by the hostile plane's server."""

from __future__ import annotations

import base64
import hashlib
import json
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from joserfc import jwk, jws

from console.controlplane.client import ControlPlaneClient
from tests.controlplane import hostile
from tests.controlplane.hostile import HostilePlane


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# DESIGN section 6 fixes `alg: EdDSA`; RFC 9864 prefers the fully specified "Ed25519" name since.
@pytest.mark.filterwarnings("ignore:EdDSA is deprecated:joserfc.jwk.SecurityWarning")
async def test_every_proof_on_the_wire_verifies_independently():
    with HostilePlane() as plane:
        key = Ed25519PrivateKey.generate()
        client = ControlPlaneClient(plane.url, key)
        try:
            await client.join("jt_x", "edge-1")
            await client.host_heartbeat("h_hostile")
            await client.create_loop("docs")
            await client.get_config("h_hostile", '"e1"', 1024)
            await client.revive_loop("lp_remote1", None, "idle")
            await client.loop_heartbeat("lp_remote1", "rt_good", None, "idle")
            client._access = ("at_stale", time.time() + 3600)
            plane.answer(hostile.HOST_HEARTBEAT, hostile.Shape(401, b"{}"))
            await client.host_heartbeat("h_hostile")  # refreshed once: two more proofs, each its own
        finally:
            await client.close()
        requests = list(plane.requests)
    proved = [(call, method, url, headers) for call, method, url, headers in requests if "DPoP" in headers]
    assert {call for call, *_ in proved} == {hostile.TOKEN, hostile.HOST_HEARTBEAT, hostile.LOOP_CREATE,
                                             hostile.CONFIG, hostile.REVIVAL}
    assert all("DPoP" not in h for c, _m, _u, h in requests if c in (hostile.JOIN, hostile.LOOP_HEARTBEAT))
    jtis = []
    for call, method, url, headers in proved:
        proof = headers["DPoP"]
        header = jws.extract_compact(proof.encode()).protected
        assert header["typ"] == "dpop+jwt" and header["alg"] == "EdDSA", call
        assert set(header["jwk"]) == {"kty", "crv", "x"} and header["jwk"]["crv"] == "Ed25519"  # no "d"
        public = jwk.import_key(header["jwk"])
        verified = jws.deserialize_compact(proof, public, algorithms=["EdDSA"])  # the signature, by that key
        claims = json.loads(verified.payload)
        assert claims["htm"] == method and claims["htu"] == url.split("?")[0], call
        assert abs(claims["iat"] - time.time()) < 60
        jtis.append(claims["jti"])
        authorization = headers.get("Authorization", "")
        if authorization.startswith("DPoP "):
            token = authorization.removeprefix("DPoP ")
            assert claims["ath"] == b64url(hashlib.sha256(token.encode("ascii")).digest()), call
        else:
            assert "ath" not in claims, call
    assert len(jtis) == len(set(jtis)) == len(proved)
    assert any(h.get("Authorization") == "DPoP at_stale" for *_, h in proved)  # the refresh path was taken
