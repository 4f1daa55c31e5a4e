"""DPoP (RFC 9449) with an Ed25519 key: proofs made by the host, checked by the control plane.

A proof is a JWT signed by the host key, header `typ: dpop+jwt`, `alg: EdDSA`, `jwk` (the public
key only); claims `htm`, `htu`, `iat`, `jti`, and `ath` when an access token goes with it. Every
request, retries included, gets a fresh `jti`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from console.core.records import View

MAX_AGE = 60.0  # seconds a proof's iat may be off from the verifier's clock


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def public_jwk(key: Ed25519PublicKey) -> dict[str, str]:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw)}


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK thumbprint: the key's identity that tokens are bound to."""
    canonical = json.dumps({"crv": jwk["crv"], "kty": jwk["kty"], "x": jwk["x"]}, separators=(",", ":"),
                           sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode()).digest())


def access_token_hash(token: str) -> str:
    return b64url(hashlib.sha256(token.encode("ascii")).digest())


def target_uri(url: str) -> str:
    """`htu`: the request URI without query and fragment."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def make_proof(key: Ed25519PrivateKey, method: str, url: str, *, now: float | None = None,
               access_token: str | None = None) -> str:
    claims: dict[str, Any] = {"htm": method.upper(), "htu": target_uri(url),
                              "iat": int(now if now is not None else time.time()), "jti": secrets.token_urlsafe(18)}
    if access_token is not None:
        claims["ath"] = access_token_hash(access_token)
    headers = {"typ": "dpop+jwt", "jwk": public_jwk(key.public_key())}
    return jwt.encode(claims, key, algorithm="EdDSA", headers=headers)


class ProofError(Exception):
    """A proof that must be rejected; the message says why (for logs, never echoing the token)."""


class ReplayCache:
    """jti values already used, kept for as long as a proof could still pass the age check."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}

    def claim(self, jti: str, now: float) -> None:
        for old in [j for j, at in self._seen.items() if at < now - 2 * MAX_AGE]:
            del self._seen[old]
        if jti in self._seen:
            raise ProofError("replayed jti")
        self._seen[jti] = now


class Verified(View, frozen=True):
    jkt: str  # thumbprint of the key that signed
    jti: str


def verify_proof(proof: str, *, method: str, url: str, now: float, replay: ReplayCache,
                 access_token: str | None = None, expected_jkt: str | None = None) -> Verified:
    try:
        header = jwt.get_unverified_header(proof)
    except jwt.PyJWTError as exc:
        raise ProofError(f"not a JWT: {exc}") from None
    if header.get("typ") != "dpop+jwt":
        raise ProofError("typ is not dpop+jwt")
    if header.get("alg") != "EdDSA":
        raise ProofError("alg is not EdDSA")
    jwk = header.get("jwk")
    if not isinstance(jwk, dict) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519" or "x" not in jwk:
        raise ProofError("jwk is not an Ed25519 public key")
    if "d" in jwk:
        raise ProofError("jwk carries a private key")
    try:
        raw = base64.urlsafe_b64decode(jwk["x"] + "=" * (-len(jwk["x"]) % 4))
        public = Ed25519PublicKey.from_public_bytes(raw)
        claims = jwt.decode(proof, public, algorithms=["EdDSA"], options={"require": ["htm", "htu", "iat", "jti"]})
    except (ValueError, jwt.PyJWTError) as exc:
        raise ProofError(f"bad signature or claims: {exc}") from None
    if claims["htm"] != method.upper():
        raise ProofError("htm does not match the request method")
    if claims["htu"] != target_uri(url):
        raise ProofError("htu does not match the request URI")
    if not isinstance(claims["iat"], int | float) or abs(now - claims["iat"]) > MAX_AGE:
        raise ProofError("iat is too far from now")
    if access_token is not None and claims.get("ath") != access_token_hash(access_token):
        raise ProofError("ath does not match the access token")
    jkt = thumbprint(jwk)
    if expected_jkt is not None and jkt != expected_jkt:
        raise ProofError("signed by a key the token is not bound to")
    replay.claim(str(claims["jti"]), now)
    return Verified(jkt=jkt, jti=str(claims["jti"]))
