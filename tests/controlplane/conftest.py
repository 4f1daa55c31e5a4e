from __future__ import annotations

import subprocess

import httpx
import pytest

from tests.conftest import free_port, loopctl_argv, wait_for


@pytest.fixture(scope="module")
def plane():
    """The reference control plane, a real `loopctl controlplane serve` on a free loopback port."""
    port = free_port()
    proc = subprocess.Popen([*loopctl_argv(), "controlplane", "serve", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.post(f"{base}/admin/join-tokens", timeout=1).status_code == 201
        except httpx.TransportError:
            return False

    wait_for(up, timeout=20, what="the reference control plane")
    yield base
    proc.terminate()
    proc.wait(timeout=10)


def admin(base: str, what: str, **body) -> dict:
    response = httpx.post(f"{base}/admin/{what}", json=body, timeout=5)
    response.raise_for_status()
    return response.json()



