"""The byte cap holds on the wire: identity, gzip and deflate, bombs and truncated streams."""

from __future__ import annotations

import gzip
import zlib

import pytest

from console.controlplane.bounded import BadEncoding, BoundedDecoder, TooLarge

CAP = 1024


def feed_all(decoder: BoundedDecoder, data: bytes, step: int = 100) -> bytes:
    out = b"".join(decoder.feed(data[i:i + step]) for i in range(0, len(data), step))
    return out + decoder.finish()


@pytest.mark.parametrize("encoding", ["", "identity", "gzip", "deflate"])
def test_bodies_under_the_cap_come_back_whole(encoding):
    body = b'{"sidecar": []}' * 20
    wire = {"gzip": gzip.compress(body), "deflate": zlib.compress(body)}.get(encoding, body)
    assert feed_all(BoundedDecoder(encoding, CAP), wire) == body


def test_identity_over_the_cap_is_refused_at_the_first_byte_past_it():
    decoder = BoundedDecoder("", CAP)
    decoder.feed(b"x" * CAP)
    with pytest.raises(TooLarge):
        decoder.feed(b"x")


def test_a_gzip_bomb_is_refused_with_bounded_output_per_step():
    bomb = gzip.compress(b"\0" * (64 << 20))  # 64 MiB of zeros in about 64 KiB
    decoder = BoundedDecoder("gzip", CAP)
    with pytest.raises(TooLarge):
        decoder.feed(bomb)  # one raw chunk holding the whole bomb
    assert decoder.decoded <= CAP + 1  # never inflated past the cap


def test_corrupt_and_truncated_compressed_bodies_are_clear_errors():
    with pytest.raises(BadEncoding, match="corrupt"):
        feed_all(BoundedDecoder("gzip", CAP), b"not gzip at all")
    with pytest.raises(BadEncoding, match="truncated"):
        feed_all(BoundedDecoder("gzip", CAP), gzip.compress(b"x" * 500)[:-12])
    with pytest.raises(BadEncoding, match="unsupported"):
        BoundedDecoder("br", CAP)
