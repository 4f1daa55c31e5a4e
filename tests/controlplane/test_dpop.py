"""DPoP proofs (RFC 9449): accepted when right, rejected for every way they can be wrong."""

import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from console.controlplane.dpop import ProofError, ReplayCache, make_proof, public_jwk, thumbprint, verify_proof

URL = "http://127.0.0.1:9/v1/hosts/h1/heartbeat"
KEY = Ed25519PrivateKey.generate()
JKT = thumbprint(public_jwk(KEY.public_key()))


def check(proof, *, method="POST", url=URL, now=None, replay=None, token=None, jkt=JKT):
    return verify_proof(proof, method=method, url=url, now=now or time.time(), replay=replay or ReplayCache(),
                        access_token=token, expected_jkt=jkt)


def test_a_proper_proof_is_accepted_and_names_its_key():
    proof = make_proof(KEY, "post", URL + "?q=1#f", access_token="tok")
    header = jwt.get_unverified_header(proof)
    assert header["typ"] == "dpop+jwt" and header["alg"] == "EdDSA" and "d" not in header["jwk"]
    assert check(proof, token="tok").jkt == JKT


def test_every_request_gets_a_fresh_jti():
    assert check(make_proof(KEY, "POST", URL)).jti != check(make_proof(KEY, "POST", URL)).jti


@pytest.mark.parametrize(
    ("proof", "kwargs", "why"),
    [
        (lambda: make_proof(Ed25519PrivateKey.generate(), "POST", URL), {}, "not bound"),
        (lambda: make_proof(KEY, "POST", "http://127.0.0.1:9/v1/other"), {}, "htu"),
        (lambda: make_proof(KEY, "GET", URL), {}, "htm"),
        (lambda: make_proof(KEY, "POST", URL, now=time.time() - 600), {}, "iat"),
        (lambda: make_proof(KEY, "POST", URL, access_token="other"), {"token": "tok"}, "ath"),
        (lambda: make_proof(KEY, "POST", URL), {"token": "tok"}, "ath"),
        (lambda: "not.a.jwt", {}, "not a JWT"),
        (lambda: jwt.encode({"htm": "POST", "htu": URL, "iat": int(time.time()), "jti": "x"}, KEY, algorithm="EdDSA",
                            headers={"jwk": public_jwk(KEY.public_key())}), {}, "typ"),
    ],
)
def test_wrong_proofs_are_rejected(proof, kwargs, why):
    with pytest.raises(ProofError, match=why):
        check(proof(), **kwargs)


def test_a_replayed_proof_is_rejected():
    replay = ReplayCache()
    proof = make_proof(KEY, "POST", URL)
    check(proof, replay=replay)
    with pytest.raises(ProofError, match="replayed"):
        check(proof, replay=replay)


def test_a_tampered_signature_is_rejected():
    proof = make_proof(KEY, "POST", URL)
    head, body, _sig = proof.split(".")
    forged = make_proof(Ed25519PrivateKey.generate(), "POST", URL).split(".")[2]
    with pytest.raises(ProofError, match="bad signature"):
        check(f"{head}.{body}.{forged}")
