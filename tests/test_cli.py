"""The headless faces as an operator uses them: real `loopctl` processes on one state directory."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from console.core.paths import MAX_SOCKET_PATH
from console.host.lease import lease_is_held
from tests.conftest import NOBODY, Host, as_user, requires_root, wait_for


def test_one_owns_one_observes_and_after_kill_9_the_observer_takes_over(host: Host):
    owner = host.spawn("run")
    host.wait_owner(owner)
    observer = host.spawn("run", "--standby")
    wait_for(lambda: f"owner pid {owner.pid}: tray ok" in host.log(observer), what="the observer to watch the owner")
    assert host.engine_pid() == owner.pid  # the observer has not taken anything over

    owner.send_signal(signal.SIGKILL)
    owner.wait()
    assert host.state.joinpath("engine.sock").exists()  # what a killed engine leaves behind
    host.wait_owner(observer)

    code, report = host.once_json()
    assert code == 0
    reasons = [e["reason"] for e in report["snapshot"]["events"]]
    assert f"engine pid {owner.pid} ended without stopping cleanly" in reasons
    assert reasons[0] == f"engine started (pid {observer.pid})"
    log = host.log(observer)
    assert "the owning engine went away" in log and "took over" in log

    observer.send_signal(signal.SIGTERM)
    assert observer.wait(timeout=10) == 0


def test_a_second_engine_without_standby_is_refused_in_one_line(host: Host):
    owner = host.spawn("run")
    host.wait_owner(owner)
    second = host.run("run")
    assert second.returncode == 2
    assert second.stderr.count("\n") == 1 and "Traceback" not in second.stderr
    assert f"an engine already owns {host.state} (pid {owner.pid}" in second.stderr
    assert host.engine_pid() == owner.pid


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_stop_the_engine_cleanly(host: Host, sig):
    owner = host.spawn("run")
    host.wait_owner(owner)
    owner.send_signal(sig)
    assert owner.wait(timeout=10) == 0
    assert not (host.state / "engine.sock").exists()
    assert not lease_is_held(host.state / "engine.lock")
    code, report = host.once_json()
    assert code == 2
    assert report["snapshot"]["events"][0]["reason"] == f"engine stopped (pid {owner.pid})"
    assert "Traceback" not in host.log(owner)


def test_once_against_a_running_engine_in_text_and_json(host: Host):
    owner = host.spawn("run")
    host.wait_owner(owner)
    text = host.run("--once")
    assert text.returncode == 0, text.stderr
    assert text.stdout.splitlines()[0] == "LOOPCTL OK - ok"
    assert f"engine: running, pid {owner.pid}" in text.stdout
    assert "nothing configured" in text.stdout
    code, report = host.once_json()
    assert code == 0 and report["status"] == "OK" and report["exit_code"] == 0
    assert report["snapshot"]["engine"]["source"] == "owner"


def test_once_reports_a_running_engine_when_the_config_file_stops_loading(host: Host):
    """A half-edited file must not hide a healthy engine from monitoring: the engine's view, plus a
    warning that the next start would refuse the file. Actions still reach the engine."""
    host.write_config('[[sidecar]]\nname = "web"\ncommand = ["sleep", "86400"]\n')
    owner = host.spawn("run")
    host.wait_owner(owner)
    wait_for(lambda: host.once_json()[1]["snapshot"]["sidecars"][0]["state"] == "ready", what="web ready")
    host.write_config('[[sidecar]]\nname = "web"\ncommand = ["sleep", "86400"]\nport = "x"\n')
    code, report = host.once_json()
    assert code == 1 and report["status"] == "WARNING"
    reason = next(r for r in report["snapshot"]["tray"]["reasons"] if r["code"] == "config_unloadable")
    assert reason["level"] == "degraded"
    assert f"{host.config_file}: sidecar[0].port: expected an integer, got 'x'" in reason["text"]
    assert f"engine pid {owner.pid} keeps running the config it started with" in reason["text"]
    assert report["snapshot"]["sidecars"][0]["state"] == "ready"  # the engine's own view, not a guess
    nagios = host.run("--once", "--format", "nagios")
    assert nagios.returncode == 1 and nagios.stdout.startswith("LOOPCTL WARNING - degraded: the config file does "
                                                               "not load")
    action = host.run("retry", "sidecar:nope")  # said to the engine: the file is not read
    assert action.returncode == 2 and "config" not in action.stderr and "nope" in action.stderr
    assert owner.poll() is None
    owner.send_signal(signal.SIGTERM)
    assert owner.wait(timeout=10) == 0
    stopped = host.run("--once")  # no engine: the offline view is built from the file, which does not load
    assert stopped.returncode == 2 and "sidecar[0].port: expected an integer" in stopped.stderr


@pytest.mark.parametrize("how", ["stopped", "killed"])
def test_once_against_a_stopped_engine_is_critical_in_text_and_json(host: Host, how):
    owner = host.spawn("run")
    host.wait_owner(owner)
    owner.send_signal(signal.SIGTERM if how == "stopped" else signal.SIGKILL)
    owner.wait(timeout=10)
    text = host.run("--once")
    assert text.returncode == 2
    first = text.stdout.splitlines()[0]
    assert first.startswith(f"LOOPCTL CRITICAL - down: no engine owns {host.state}")
    assert ("stopped cleanly" if how == "stopped" else "ended without stopping (killed or crashed)") in first
    code, report = host.once_json()
    assert code == 2 and report["status"] == "CRITICAL"
    assert report["snapshot"]["tray"]["reasons"][0]["code"] == "engine_not_running"
    assert report["snapshot"]["engine"] == {**report["snapshot"]["engine"], "running": False, "source": "offline"}


def digest(directory) -> dict[str, str]:
    """Content of every regular file but the shared-memory WAL index (see store.py)."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())
            if p.is_file() and not p.name.endswith("-shm")}


def test_once_never_mutates_the_state_directory(host: Host):
    # A fresh host: --once creates nothing at all.
    assert host.run("--once").returncode == 2
    assert not host.state.exists()
    # A killed engine's leftovers (socket, WAL): --once leaves every byte and name as it was.
    owner = host.spawn("run")
    host.wait_owner(owner)
    owner.send_signal(signal.SIGKILL)
    owner.wait()
    names = sorted(os.listdir(host.state))
    before = digest(host.state)
    for fmt in ("text", "json"):
        assert host.run("--once", "--format", fmt).returncode == 2
    assert sorted(os.listdir(host.state)) == names
    assert digest(host.state) == before


def test_once_imports_neither_textual_nor_httpx_nor_rich(host: Host):
    probe = textwrap.dedent("""
        import sys
        from console.cli import main
        code = main(["--once", "--format", "json"])
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in {"textual", "httpx", "rich", "prometheus_client",
                                                                     "typing_extensions", "inspect"}
                       and sys.modules[m] is not None)
        print(repr((code, heavy)), file=sys.stderr)
    """)
    result = subprocess.run([sys.executable, "-c", probe], env=host.env, capture_output=True, text=True, timeout=30,
                            check=False)
    code, heavy = eval(result.stderr.strip().splitlines()[-1])
    assert code == 2 and json.loads(result.stdout)["status"] == "CRITICAL"
    assert heavy == []  # typing_extensions (and inspect behind it): msgspec's, optional, a seventh of --once


@pytest.mark.parametrize("fmt", ["text", "json", "nagios", "openmetrics"])
def test_once_in_every_format_works_without_typing_extensions(host: Host, fmt):
    """What --once loads, in each format and against a running engine, with typing_extensions left out."""
    host.wait_owner(host.spawn("run"))
    result = host.run("--once", "--format", fmt)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and result.stdout.strip()


def test_an_engine_loads_http_client_only_for_a_sidecars_http_check():
    """http.client (and email's parser behind it) was a sixth of what the owning console imports past
    the code before msgspec (issue 18); only an HTTP health check needs it."""
    probe = textwrap.dedent("""
        import sys
        import console.host.owner, console.sidecars.health
        print("http.client" in sys.modules)
    """)
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=30, check=True)
    assert result.stdout.strip() == "False"


def test_the_engine_package_never_imports_textual():
    probe = textwrap.dedent("""
        import importlib, pkgutil, sys
        import console
        for package in ("core", "sidecars", "runs", "remote", "readmodel", "host"):
            path = importlib.import_module(f"console.{package}").__path__
            for info in pkgutil.iter_modules(path):
                importlib.import_module(f"console.{package}.{info.name}")
        print(sorted(m for m in sys.modules if m.split(".")[0] in {"textual", "rich", "httpx"}))
    """)
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=30, check=True)
    assert result.stdout.strip() == "[]"


BAD_INPUTS = {
    "missing config": (["--config", "{root}/nope.toml"], None, "config file {root}/nope.toml not found"),
    "invalid toml": ([], "[host\n", "invalid TOML"),
    "unknown key": ([], '[host]\nname = "a"\nport = 3\n',
                    "host.port: unknown key (known keys: keep_events, keep_runs_days, keep_runs_per_loop, name, "
                    "socket_idle_seconds, socket_max_connections)"),
    "wrong type": ([], "[host]\nname = 5\n", "host.name: expected a string, got 5"),
}


@pytest.mark.parametrize("command", [["run"], ["--once"], []])
@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_config_is_one_line_and_exit_2(host: Host, command, case):
    extra, config_text, expected = BAD_INPUTS[case]
    if config_text is not None:
        host.write_config(config_text)
    args = [a.format(root=host.root) for a in extra]
    result = host.run(*args, *command)
    assert result.returncode == 2
    assert result.stderr.startswith("loopctl: ") and result.stderr.count("\n") == 1, result.stderr
    assert expected.format(root=host.root) in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


@pytest.mark.parametrize("command", [["run"], ["--once"], []])
def test_a_corrupt_database_is_reported_and_nothing_is_deleted(host: Host, command):
    host.state.mkdir()
    db = host.state / "loopctl.db"
    db.write_bytes(b"definitely not sqlite\n" * 300)
    result = host.run(*command)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"state database {db} is unreadable or corrupt" in result.stderr
    assert "left untouched" in result.stderr and result.stderr.count("\n") == 1
    assert db.read_bytes() == b"definitely not sqlite\n" * 300
    assert sorted(p.name for p in host.state.iterdir() if p.name != "engine.lock") == ["loopctl.db"]


def test_a_state_dir_under_a_file_is_a_clear_error(host: Host):
    blocker = host.root / "blocker"
    blocker.write_text("")
    result = host.run("--state-dir", str(blocker / "state"), "run")
    assert result.returncode == 2
    assert "a parent is not a directory" in result.stderr and "--state-dir" in result.stderr


def test_the_longest_state_dir_a_socket_allows_works_and_one_byte_more_is_a_clear_error(host: Host):
    """The engine binds a temporary name first: it must fit wherever `engine.sock` fits."""
    base = Path(tempfile.mkdtemp(prefix="lc-"))
    try:
        fits = base / ("s" * (MAX_SOCKET_PATH - len(f"{base}/") - len("/engine.sock")))
        assert len(os.fsencode(fits / "engine.sock")) == MAX_SOCKET_PATH
        engine = host.spawn("--state-dir", str(fits), "run")
        wait_for(lambda: (fits / "engine.sock").exists() or engine.poll() is not None, what="the engine's socket")
        assert engine.poll() is None, host.log(engine)
        result = host.run("--state-dir", str(fits), "--once")
        assert result.returncode == 0 and f"engine: running, pid {engine.pid}" in result.stdout, result.stdout
        engine.send_signal(signal.SIGTERM)
        assert engine.wait(timeout=15) == 0
        too_long = base / (fits.name + "s")
        result = host.run("--state-dir", str(too_long), "run")
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert result.stderr.strip() == (f"loopctl: socket path {too_long}/engine.sock is longer than "
                                         f"{MAX_SOCKET_PATH} bytes: use a shorter --state-dir")
    finally:
        shutil.rmtree(base, ignore_errors=True)


@requires_root
def test_a_state_dir_that_is_not_writable_is_a_clear_error(shared_dir):
    import console.host.daemon  # noqa: F401  (loaded before the fork: nobody cannot read under /root)
    from console.cli import main

    state = shared_dir / "root-owned"
    state.mkdir(mode=0o755)
    config = shared_dir / "c.toml"
    config.write_text("")
    config.chmod(0o644)

    def attempt() -> tuple[int, str]:
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = main(["--state-dir", str(state), "--config", str(config), "run"])
        return code, err.getvalue()

    answer = as_user(NOBODY, attempt)
    assert answer.startswith("(2, 'loopctl: state directory ")
    assert "is not writable (permission denied)" in answer
    assert list(state.iterdir()) == []


def test_actions_reach_the_owner_and_refusals_are_clear(host: Host):
    none = host.run("retry", "sidecar:web")
    assert none.returncode == 2 and f"no engine owns {host.state}" in none.stderr
    owner = host.spawn("run")
    host.wait_owner(owner)
    unknown = host.run("retry", "sidecar:web")
    assert unknown.returncode == 2
    assert "retry sidecar:web refused (unknown_target): no sidecar named 'web' (sidecars: none configured)" \
        in unknown.stderr
    refused = host.run("cancel", "sidecar:web")
    assert "cancel sidecar:web refused (not_applicable): cancel does not apply to sidecar targets" in refused.stderr
    bad = host.run("cancel", "nonsense")
    assert bad.returncode == 2 and "refused (bad_target)" in bad.stderr
    ro = host.run("--read-only", "reclaim", "sidecar:web")
    assert ro.returncode == 2 and "--read-only" in ro.stderr


def test_a_read_only_engine_says_so_and_refuses_actions(host: Host):
    owner = host.spawn("run", "--read-only")
    host.wait_owner(owner)
    assert "read-only" in host.run("--once").stdout
    refused = host.run("retry", "sidecar:web")
    assert "refused (read_only)" in refused.stderr


def test_options_work_before_and_after_the_command(host: Host):
    other = host.root / "other-state"
    owner = host.spawn("run", "--state-dir", str(other))
    wait_for((other / "engine.sock").exists, what="the engine socket")
    result = host.run("--state-dir", str(other), "--once")
    assert result.returncode == 0 and f"pid {owner.pid}" in result.stdout


def test_once_in_nagios_format_exits_with_the_status(host: Host):
    stopped = host.run("--once", "--format", "nagios")
    assert stopped.returncode == 2 and stopped.stdout.startswith("LOOPCTL CRITICAL - down: no engine owns")
    engine = host.spawn("run")
    host.wait_owner(engine)
    running = host.run("--once", "--format", "nagios")
    assert running.returncode == 0 and running.stdout.startswith("LOOPCTL OK - ok: ")
    assert " | 'engine_up'=1;;1:;0;1 " in running.stdout


def test_nagios_gets_a_status_line_even_when_loopctl_cannot_evaluate(host: Host):
    """A config typo must not reach Nagios as "(No output on stdout)": one status line, the exit code kept."""
    host.write_config('[[sidecar]]\nname = 3\ncommand = ["true"]\n')
    result = host.run("--once", "--format", "nagios")
    assert result.returncode == 2
    assert result.stdout == f"LOOPCTL CRITICAL - {host.config_file}: sidecar[0].name: expected a string, got 3; " \
                            f"see the README's 'Host config' section\n"
    assert result.stderr.startswith("loopctl: ") and result.stderr.count("\n") == 1


def test_run_keeps_a_node_exporter_textfile_up_to_date(host: Host):
    import stat

    from prometheus_client.parser import text_string_to_metric_families

    textdir = host.root / "textfiles"
    textdir.mkdir()
    target = textdir / "loopctl.prom"
    engine = host.spawn("run", "--metrics-textfile", str(target))
    host.wait_owner(engine)
    wait_for(target.exists, what="the textfile")
    families = {f.name: f for f in text_string_to_metric_families(target.read_text())}
    assert families["loopctl_engine_up"].samples[0].value == 1
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert sorted(p.name for p in textdir.iterdir()) == ["loopctl.prom"]  # no temp files left behind
    engine.send_signal(signal.SIGTERM)
    assert engine.wait(timeout=10) == 0


def test_a_textfile_in_a_missing_directory_is_a_clear_error(host: Host):
    result = host.run("run", "--metrics-textfile", str(host.root / "nope" / "loopctl.prom"))
    assert result.returncode == 2 and "does not exist: point it at node_exporter's textfile directory" in result.stderr


@pytest.mark.parametrize("argv", [
    [], ["--once"], ["--once", "--format", "nagios"], ["--state-dir", "/x", "--config", "/y.toml", "--read-only"],
    ["--state", "/x"], ["--format=json", "--once"],
])
def test_the_short_parse_for_the_console_and_once_reads_what_the_full_parser_reads(argv):
    from console.cli import build_parser, parse_args

    assert vars(parse_args(argv)) == vars(build_parser().parse_args(argv))


def test_the_short_parse_knows_every_command():
    from console.cli import COMMANDS, build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert set(COMMANDS) == set(sub.choices)


@pytest.mark.parametrize(("argv", "error"), [
    (["bogus"], "invalid choice: 'bogus'"),
    (["--once", "extra"], "invalid choice: 'extra'"),
    (["--format", "xml"], "invalid choice: 'xml'"),
])
def test_a_bad_command_line_reads_the_same_error_as_before(argv, error, capsys):
    from console.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert error in err and err.count("\n") == 1 and "usage:" not in err  # one line; --help has the usage


def test_help_lists_every_command(capsys):
    from console.cli import COMMANDS, parse_args

    with pytest.raises(SystemExit):
        parse_args(["--help"])
    out = capsys.readouterr().out
    assert all(command in out for command in COMMANDS)
