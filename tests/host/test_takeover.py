"""Takeover takes the owner's config: `loopctl run --standby`, started without --config, takes the host
over with the file the dead owner ran (its lease holder record names it), reclaims what the owner left,
and refuses, with the reason, when that file no longer loads."""

from __future__ import annotations

import json
import signal
import sys

from console.host.lease import read_holder
from tests.conftest import Host, gone, wait_for

SLEEPER = [sys.executable, "-c", "import time\nwhile True: time.sleep(60)"]


def owner_config(host: Host):
    path = host.root / "owner.toml"  # not the default path: a standby without --config would not find it
    path.write_text(f"[[sidecar]]\nname = \"web\"\ncommand = {json.dumps(SLEEPER)}\n")
    return path


def sidecars(host: Host) -> dict[str, dict]:
    _code, report = host.once_json()
    return {s["name"]: s for s in report["snapshot"]["sidecars"]}  # type: ignore[index]


def test_a_standby_takes_over_with_the_owners_config_and_reclaims_its_sidecar(host: Host):
    config = owner_config(host)
    owner = host.spawn("run", "--config", str(config))
    host.wait_owner(owner)
    holder = read_holder(host.state / "engine.lock")
    assert holder is not None and holder.config_path == str(config) and holder.config_present
    wait_for(lambda: sidecars(host).get("web", {}).get("state") == "ready", 20, "web ready under the owner")
    old_web = sidecars(host)["web"]["pid"]
    standby = host.spawn("run", "--standby")  # no --config: its own default is the empty host
    wait_for(lambda: "taking over when it exits" in host.log(standby), 20, "the standby observing")
    owner.send_signal(signal.SIGKILL)
    owner.wait(timeout=10)
    host.wait_owner(standby, timeout=30)
    wait_for(lambda: sidecars(host).get("web", {}).get("state") == "ready", 20, "web ready under the standby")
    _code, report = host.once_json()
    assert report["snapshot"]["host"]["config_path"] == str(config)  # type: ignore[index]
    new_web = sidecars(host)["web"]["pid"]
    assert new_web != old_web and gone(old_web), "the dead owner's sidecar runs on"


def test_a_standby_refuses_to_take_over_when_the_owners_config_no_longer_loads(host: Host):
    config = owner_config(host)
    owner = host.spawn("run", "--config", str(config))
    host.wait_owner(owner)
    standby = host.spawn("run", "--standby")
    wait_for(lambda: "taking over when it exits" in host.log(standby), 20, "the standby observing")
    config.write_text("[[sidecar]\nname = ")  # edited into something that does not parse
    owner.send_signal(signal.SIGTERM)
    owner.wait(timeout=20)
    assert standby.wait(timeout=30) == 2
    lines = [line for line in host.log(standby).splitlines() if "no longer loads" in line]
    assert len(lines) == 1 and str(config) in lines[0] and "invalid TOML" in lines[0], host.log(standby)
    assert "Traceback" not in host.log(standby)
    _code, report = host.once_json()
    assert report["snapshot"]["engine"]["running"] is False  # type: ignore[index]
