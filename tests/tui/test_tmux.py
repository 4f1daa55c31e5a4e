"""The real `loopctl` executable inside tmux, driven with send-keys and read with capture-pane:
an operator cancels a running run."""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
import sys
import time

import psutil
import pytest

from console.core.processes import group_alive
from tests.conftest import Host, gone, loopctl_argv, wait_for
from tests.test_cli_runs import loop_config
from tests.test_demo import end_survivors, survivors


def console_command(host: Host, **extra: str) -> str:
    """`loopctl` on the host, as a tmux pane runs it: the host's own environment, nothing of ours."""
    keep = {k: v for k, v in host.env.items() if k in ("LOOPCTL_HOME", "XDG_CONFIG_HOME", "HOME", "PATH")}
    return f"env {' '.join(f'{k}={v}' for k, v in {**extra, **keep}.items())} {' '.join(loopctl_argv())}"


def pane_process(tmux) -> psutil.Process:
    """The console pane's own process (`env` execs loopctl: it is loopctl itself)."""
    return psutil.Process(int(tmux("display-message", "-p", "-t", "console", "#{pane_pid}").strip()))


def must_exit(proc: psutil.Process, why: str) -> None:
    """Fail with `why` if `proc` is still alive after 15 s, and leave nothing behind."""
    try:
        proc.wait(timeout=15)
    except psutil.TimeoutExpired:
        proc.kill()
        raise AssertionError(why) from None


@pytest.fixture
def tmux(tmp_path):
    assert shutil.which("tmux"), "tmux is required for this test (.ci/run installs it)"
    socket = f"loopctl-test-{tmp_path.name}"

    def run(*args: str) -> str:
        return subprocess.run(["tmux", "-L", socket, *args], capture_output=True, text=True, check=True).stdout

    run.socket = socket  # type: ignore[attr-defined]
    yield run
    subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, check=False)


def test_an_operator_cancels_a_running_run_from_the_console(host: Host, tmux):
    loop_config(host)  # one loop whose agent keeps a member of its process group running
    tmux("new-session", "-d", "-s", "console", "-x", "120", "-y", "40", console_command(host))

    def screen() -> str:
        return tmux("capture-pane", "-p", "-t", "console")

    def running_run() -> dict | None:
        _code, report = host.once_json()
        return next((r for r in report["snapshot"]["runs"] if r["status"] == "running"), None)

    wait_for(lambda: "owner" in screen(), timeout=20, what="the console to own the host")
    wait_for(running_run, timeout=20, what="a running run")
    run = running_run()
    wait_for(lambda: "working" in (host.state / "runs" / run["id"] / "output.log").read_text(), what="agent up")
    tmux("send-keys", "-t", "console", "4")
    wait_for(lambda: run["id"] in screen() and "running" in screen(), what="the run on the Runs tab")
    tmux("send-keys", "-t", "console", "c")
    wait_for(lambda: f"Cancel run:{run['id']}?" in screen(), what="the confirmation")
    tmux("send-keys", "-t", "console", "y")
    wait_for(lambda: (r := _run(host, run["id"])) is not None and r["status"] == "cancelled", what="cancelled")
    assert _run(host, run["id"])["stop_reason"] == "cancelled"
    assert not group_alive(run["pid"])
    wait_for(lambda: "cancelled" in screen(), what="the console to show it")
    tmux("send-keys", "-t", "console", "q")
    wait_for(lambda: not (host.state / "engine.sock").exists(), what="the console's engine to stop")


def _run(host: Host, run_id: str) -> dict | None:
    _code, report = host.once_json()
    return next((r for r in report["snapshot"]["runs"] if r["id"] == run_id), None)


def test_json_report_is_available_while_the_console_owns_the_host(host: Host, tmux):
    start = time.monotonic()
    tmux("new-session", "-d", "-s", "console", "-x", "80", "-y", "24", console_command(host))
    wait_for(lambda: "OK" in tmux("capture-pane", "-p", "-t", "console"), timeout=20, what="the first frame")
    assert time.monotonic() - start < 20
    code, report = host.once_json()
    assert code == 0 and report["snapshot"]["engine"]["source"] == "owner"
    assert json.dumps(report).count("nothing_configured") == 1


def test_a_newcomer_opens_the_demo_from_an_empty_console_and_quitting_ends_it(host: Host, tmux, short_tmp):
    """The README's first command on a fresh host, then `d`: the demo host, then `q` ends all of it."""
    temp = short_tmp  # the demo's state dir goes under TMPDIR, and its socket path must stay short
    tmux("new-session", "-d", "-s", "console", "-x", "120", "-y", "40",
         console_command(host, TMPDIR=str(temp)))

    def screen() -> str:
        return tmux("capture-pane", "-p", "-t", "console")

    wait_for(lambda: "press d for a demo host" in screen(), timeout=20, what="the empty console's offer")
    tmux("send-keys", "-t", "console", "d")
    wait_for(lambda: "demo-host" in screen() and "agent-monitor" in screen(), timeout=90, what="the demo host")
    assert not (host.state / "engine.sock").exists()  # the empty host's engine stopped before the demo began
    (demo,) = temp.glob("loopctl-demo-*")
    assert survivors(str(demo)), "the demo's processes name its directory"
    tmux("send-keys", "-t", "console", "q")
    try:
        wait_for(lambda: not survivors(str(demo)) and not demo.exists(), timeout=60, what="every demo process to end")
    finally:
        end_survivors(str(demo))


def test_a_dropped_terminal_stops_the_engine_the_console_owns_cleanly(host: Host, tmux):
    """SSH drops, the terminal closes (SIGHUP): the console quits as with `q`, its sidecar ends with it."""
    host.write_config('[[sidecar]]\nname = "sleeper"\ncommand = ["sleep", "86400"]\n')
    tmux("new-session", "-d", "-s", "console", "-x", "100", "-y", "30", console_command(host))
    wait_for(lambda: (s := host.once_json()[1]["snapshot"]["sidecars"]) and s[0]["state"] == "ready",
             timeout=20, what="the sidecar ready")
    sidecar = psutil.Process(host.once_json()[1]["snapshot"]["sidecars"][0]["pid"])
    console = pane_process(tmux)
    try:
        tmux("kill-server")  # every pane's process gets SIGHUP
        wait_for(lambda: not sidecar.is_running() or sidecar.status() == psutil.STATUS_ZOMBIE, timeout=20,
                 what="the sidecar to end with the console")
        wait_for(lambda: "stopped cleanly" in host.run("--once").stdout, timeout=20, what="a clean stop on record")
        must_exit(console, "the console hung writing to its dead terminal")  # the process itself is gone too
    finally:
        for proc in (sidecar, console):  # only if the test failed: leave nothing behind
            if proc.is_running():
                proc.kill()


def test_a_dropped_terminal_during_the_demo_ends_every_demo_process(host: Host, tmux, short_tmp):
    root = short_tmp / "demo"
    tmux("new-session", "-d", "-s", "console", "-x", "120", "-y", "40",
         f"{' '.join(loopctl_argv())} demo --state-dir {root}")
    wait_for(lambda: "demo-host" in tmux("capture-pane", "-p", "-t", "console"), timeout=90, what="the demo host")
    assert survivors(str(root))
    demo = pane_process(tmux)
    try:
        tmux("kill-server")
        wait_for(lambda: not survivors(str(root)), timeout=60, what="every demo process to end")
        must_exit(demo, "the demo's console hung after its terminal went away")
    finally:
        end_survivors(str(root))  # only if the test failed: leave nothing behind


def test_an_observer_console_opens_even_when_the_local_config_no_longer_loads(host: Host, tmux):
    """The owner runs the config it started with; a half-edited file must not lock the operator out."""
    engine = host.spawn("run")
    host.wait_owner(engine)
    host.write_config("[host\n")
    tmux("new-session", "-d", "-s", "console", "-x", "100", "-y", "30", console_command(host))
    wait_for(lambda: f"observer of pid {engine.pid}" in tmux("capture-pane", "-p", "-t", "console"), timeout=20,
             what="the observer's first frame")


def test_a_console_whose_terminal_vanishes_right_after_drawing_always_exits(host: Host, tmux):
    """Textual's output thread dies on a write to a hung-up terminal and quitting then blocked forever
    (3 hangs in 10 tries before console/tui/terminal.py). The hangup lands just after a frame is drawn."""
    engine = host.spawn("run")
    host.wait_owner(engine)
    tmux("new-session", "-d", "-s", "keeper", "sleep 600")  # the server outlives each console's session
    for attempt in range(6):
        tmux("new-session", "-d", "-s", "console", "-x", "120", "-y", "40", console_command(host))
        console = pane_process(tmux)
        wait_for(lambda: "observer of pid" in tmux("capture-pane", "-p", "-t", "console"), timeout=20,
                 what="the first frame")
        tmux("kill-session", "-t", "console")
        must_exit(console, f"the console hung after its terminal went away (attempt {attempt + 1})")


def test_a_hangup_while_the_console_is_quitting_still_lets_it_exit(host: Host, tmux):
    """`q`, then the terminal goes (the SSH window closed right after): the hangup's SIGCONT made Textual
    restart its input thread mid-quit, which spun on the dead terminal and kept the process alive
    (5 hangs in 6 tries before console/tui/terminal.py)."""
    host.write_config('[[sidecar]]\nname = "sleeper"\ncommand = ["sleep", "86400"]\n')
    for delay in (0.2, 0.2, 0.3, 0.4):
        tmux("new-session", "-d", "-s", "console", "-x", "100", "-y", "30", console_command(host))
        console = pane_process(tmux)
        wait_for(lambda: "1 ready" in tmux("capture-pane", "-p", "-t", "console"), timeout=20, what="the sidecar")
        tmux("send-keys", "-t", "console", "q")
        time.sleep(delay)  # real time on purpose: the hangup must land while the console is quitting
        with contextlib.suppress(subprocess.CalledProcessError):  # the server ends by itself if `q` was quick
            tmux("kill-server")
        must_exit(console, f"the console hung after a hangup {delay} s into quitting")
        wait_for(lambda: "stopped cleanly" in host.run("--once").stdout, timeout=20, what="a clean stop")


HOSTILE_SIDECAR = r'''
import sys
sys.stdout.write("\x1b]2;PWNED\x1b\\ boom\x1b[2J\x1b[H\n")
sys.stdout.flush()
sys.exit(3)
'''


def test_escape_sequences_a_sidecar_prints_never_reach_the_operators_terminal(host: Host, tmux):
    """The sidecar's output and the reason made from its last line are shown, ESC as a picture:
    the pane keeps its title and its screen (OSC 2 retitled it, ESC [ 2 J cleared it)."""
    script = host.root / "hostile.py"
    script.write_text(HOSTILE_SIDECAR)
    host.write_config(f'[[sidecar]]\nname = "hostile"\ncommand = ["{sys.executable}", "{script}"]\n')
    tmux("new-session", "-d", "-s", "console", "-x", "120", "-y", "40", console_command(host))
    title = tmux("display-message", "-p", "-t", "console", "#{pane_title}").strip()

    def screen() -> str:
        return tmux("capture-pane", "-p", "-t", "console")

    wait_for(lambda: "owner" in screen(), timeout=20, what="the console to own the host")
    tmux("send-keys", "-t", "console", "2")
    wait_for(lambda: "␛]2;PWNED␛\\ boom␛[2J␛[H" in screen(), timeout=20, what="the sidecar's output, shown")
    assert tmux("display-message", "-p", "-t", "console", "#{pane_title}").strip() == title != "PWNED"
    size = tmux("display-message", "-p", "-t", "console", "#{pane_width}x#{pane_height}").strip()
    lines = screen().splitlines()
    assert "owner" in lines[0] and lines[1].startswith(" 1 Overview"), (size, screen())  # not cleared
    report = host.run("--once").stdout
    assert "\x1b" not in report and "␛]2;PWNED␛\\ boom" in report
    tmux("send-keys", "-t", "console", "q")
    wait_for(lambda: not (host.state / "engine.sock").exists(), what="the console's engine to stop")


def test_an_observer_follows_and_searches_a_sidecar_log_in_a_real_terminal(host: Host, tmux):
    """`loopctl run` owns the host; the console in tmux observes it and reads the log through its socket."""
    ticker = "import itertools, time\nfor i in itertools.count():\n    print(f'tick {i}', flush=True)\n" \
             "    time.sleep(1)\n"
    host.write_config(f"[[sidecar]]\nname = \"ticker\"\ncommand = {json.dumps([sys.executable, '-c', ticker])}\n")
    engine = host.spawn("run")
    host.wait_owner(engine)
    tmux("new-session", "-d", "-s", "console", "-x", "80", "-y", "24", console_command(host))

    def screen() -> str:
        return tmux("capture-pane", "-p", "-t", "console")

    wait_for(lambda: "observer" in screen(), timeout=20, what="the console to observe the engine")
    tmux("send-keys", "-t", "console", "2")
    wait_for(lambda: "ticker" in screen(), what="the Sidecars tab")
    tmux("send-keys", "-t", "console", "l")
    wait_for(lambda: "sidecar:ticker  following" in screen() and "tick 1" in screen(), what="the log view")
    wait_for(lambda: "tick 3" in screen(), what="a line written after the view opened")
    tmux("send-keys", "-t", "console", "/", "tick 2", "Enter")
    # Typed at once after `/`, as a paste would be: every character lands in the box, none is a log key.
    wait_for(lambda: "/tick 2: 1 of 1" in screen() and "paused (f follows)" in screen(), what="the search")
    tmux("send-keys", "-t", "console", "Escape")
    wait_for(lambda: "sidecar:ticker  " not in screen() and "Sidecars" in screen(), what="back to the tabs")
    tmux("send-keys", "-t", "console", "q")
    must_exit(pane_process(tmux), "the observing console did not quit")
    assert engine.poll() is None  # the engine it observed keeps running


def _owner_config(host: Host):
    path = host.root / "owner.toml"  # not the console's default path: it starts without --config
    path.write_text('[[sidecar]]\nname = "sleeper"\ncommand = ["sleep", "86400"]\n')
    return path


def _sidecar(host: Host) -> dict | None:
    _code, report = host.once_json()
    found = report["snapshot"]["sidecars"]
    return found[0] if found and found[0]["state"] == "ready" else None


def test_an_observer_console_declines_then_follows_the_next_owner_then_takes_over_with_its_config(host: Host, tmux):
    """Started without --config: declining leaves it observing the next owner by itself; accepting runs the
    config file that owner ran (never the console's empty default), and reclaims the owner's sidecar."""
    config = _owner_config(host)
    first = host.spawn("run", "--config", str(config))
    host.wait_owner(first)
    tmux("new-session", "-d", "-s", "console", "-x", "100", "-y", "30", console_command(host))

    def screen() -> str:
        return tmux("capture-pane", "-p", "-t", "console")

    wait_for(lambda: f"observer of pid {first.pid}" in screen(), timeout=20, what="the observer")
    first.send_signal(signal.SIGTERM)
    first.wait(timeout=20)
    wait_for(lambda: "Take over" in screen(), timeout=20, what="the takeover offer")
    tmux("send-keys", "-t", "console", "n")
    wait_for(lambda: "Take over" not in screen(), timeout=10, what="the offer declined")
    second = host.spawn("run", "--config", str(config))
    host.wait_owner(second)
    wait_for(lambda: f"observer of pid {second.pid}" in screen(), timeout=20, what="the console on the next owner")
    wait_for(lambda: _sidecar(host), timeout=20, what="the second owner's sidecar ready")
    old = _sidecar(host)["pid"]
    second.send_signal(signal.SIGKILL)  # this time the owner dies, its sidecar left running
    second.wait(timeout=10)
    wait_for(lambda: "Take over" in screen(), timeout=20, what="the takeover offer again")
    tmux("send-keys", "-t", "console", "y")
    console = pane_process(tmux)
    wait_for(lambda: host.engine_pid() == console.pid, timeout=20, what="the console to own the host")
    wait_for(lambda: _sidecar(host), timeout=20, what="the owner's sidecar, under the console")
    assert _sidecar(host)["pid"] != old and gone(old), "the dead owner's sidecar runs on"
    _code, report = host.once_json()
    assert report["snapshot"]["host"]["config_path"] == str(config)
    tmux("send-keys", "-t", "console", "q")
    must_exit(console, "the console did not quit")


def test_y_copies_the_selected_id_into_tmux_paste_buffer_by_osc_52(host: Host, tmux):
    """OSC 52 through a real tmux: with `set-clipboard on` tmux keeps what the console wrote as a
    paste buffer (and passes it on to the terminal outside, over SSH too)."""
    loop_config(host)  # one loop, `worker`
    tmux("new-session", "-d", "-s", "console", "-x", "100", "-y", "30", console_command(host))
    tmux("set-option", "-g", "set-clipboard", "on")

    def screen() -> str:
        return tmux("capture-pane", "-p", "-t", "console")

    wait_for(lambda: "owner" in screen(), timeout=20, what="the console to own the host")
    tmux("send-keys", "-t", "console", "3")
    wait_for(lambda: "worker" in screen() and "loop" in screen(), what="the loop on the Loops tab")
    tmux("send-keys", "-t", "console", "y")
    wait_for(lambda: "copied loop id worker" in screen(), what="the copy's toast")
    wait_for(lambda: subprocess.run(["tmux", "-L", tmux.socket, "show-buffer"], check=False, capture_output=True,
                                    text=True).stdout == "worker", what="the id in tmux's paste buffer")
    tmux("send-keys", "-t", "console", "q")
    wait_for(lambda: not (host.state / "engine.sock").exists(), what="the console's engine to stop")
