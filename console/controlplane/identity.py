"""The host's identity with a control plane: its Ed25519 key and its refresh token.

Both live only in 0600 files under the state directory (`keys/host.key`, `secrets/refresh_token`);
the database and every output keep at most their metadata. Nothing here logs a secret.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from console.core.atomic import atomic_write
from console.core.errors import LoopctlError


def key_path(state_dir: Path) -> Path:
    return state_dir / "keys" / "host.key"


def refresh_token_path(state_dir: Path) -> Path:
    return state_dir / "secrets" / "refresh_token"


def _private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def load_or_create_key(state_dir: Path) -> Ed25519PrivateKey:
    path = key_path(state_dir)
    if path.exists():
        return load_key(state_dir)
    _private_dir(path.parent)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    atomic_write(path, pem, mode=0o600)
    return key


def load_key(state_dir: Path) -> Ed25519PrivateKey:
    path = key_path(state_dir)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise LoopctlError(f"host key {path} is missing: join again with `loopctl join`") from None
    except (ValueError, TypeError):
        raise LoopctlError(f"host key {path} is not an Ed25519 PEM key: join again with `loopctl join`") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise LoopctlError(f"host key {path} is not an Ed25519 key: join again with `loopctl join`")
    return key


def store_refresh_token(state_dir: Path, token: str) -> None:
    path = refresh_token_path(state_dir)
    _private_dir(path.parent)
    atomic_write(path, token.encode("ascii"), mode=0o600)


def load_refresh_token(state_dir: Path) -> str | None:
    try:
        return refresh_token_path(state_dir).read_text(encoding="ascii").strip() or None
    except FileNotFoundError:
        return None
