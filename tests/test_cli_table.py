"""Every command against every bad state directory and config, with the global options before and after
the command: exit 2, one line on stderr, no traceback, `--format json` still a JSON document with
`{"status", "exit_code", "error": {"code", "message"}}`, `--format nagios` still one status line.

In-process (`main(argv)`, the function the console script calls: a few hundred cases in a second),
with a real-process sample at the end and the unwritable directory run as another user."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from console.cli import main
from tests.conftest import NOBODY, as_user, loopctl_argv, requires_root


@pytest.fixture(scope="module")
def bad(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Callable[[], tuple[str, str]]]]:
    """case -> (state dir, config) with exactly one thing wrong."""
    root = Path(os.path.realpath(tmp_path_factory.mktemp("t")))
    good_state = root / "state"
    good_config = root / "good.toml"
    good_config.write_text("")
    (root / "afile").write_text("")
    (root / "adir").mkdir()
    (root / "invalid.toml").write_text("x = [")
    (root / "nested.toml").write_text("x = " + "[" * 500 + "]" * 500 + "\n")
    (root / "nul.toml").write_text('[[sidecar]]\nname = "a"\ncommand = ["/bin/echo\\u0000x"]\n')
    (root / "env.toml").write_text('[[loop]]\nid = "a"\ncommand = ["/bin/true"]\nenv = {"A=B" = "c"}\n')
    long = root / ("l" * max(1, 108 - len(str(root)) - len("/engine.sock")))
    readonly = root / "ro"
    readonly.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(readonly)],
                             capture_output=True, check=False).returncode == 0
    cases = {
        "state dir is a file": (root / "afile", good_config),
        "state dir under a file": (root / "afile" / "state", good_config),
        "state dir too long for a socket": (long, good_config),
        # A read-only filesystem: a tmpfs mounted ro where root may mount, else sysfs (which refuses too).
        "state dir on a read-only filesystem": ((readonly if mounted else Path("/sys/fs")) / "state", good_config),
        "config missing": (good_state, root / "missing.toml"),
        "config is a directory": (good_state, root / "adir"),
        "config unreadable": (good_state, Path("/proc/self/mem")),  # open works, read fails (EIO), even for root
        "config invalid": (good_state, root / "invalid.toml"),
        "config nested 500 deep": (good_state, root / "nested.toml"),
        "config with a NUL": (good_state, root / "nul.toml"),
        "config with = in an env key": (good_state, root / "env.toml"),
    }
    yield {name: (lambda pair=pair: (str(pair[0]), str(pair[1]))) for name, pair in cases.items()}
    if mounted:
        subprocess.run(["umount", str(readonly)], check=False)


# Which cases each command meets: actions are said to the engine (the config file is not read).
STATE_CASES = ["state dir is a file", "state dir under a file", "state dir too long for a socket",
               "state dir on a read-only filesystem"]
CONFIG_CASES = ["config missing", "config is a directory", "config unreadable", "config invalid",
                "config nested 500 deep", "config with a NUL", "config with = in an env key"]
COMMANDS: dict[str, tuple[list[str], list[str]]] = {
    # name: (argv before the options, argv after), and the cases it is judged on
    "--once": (["--once"], []),
    "--once --format json": (["--once", "--format", "json"], []),
    "--once --format nagios": (["--once", "--format", "nagios"], []),
    "--once --format openmetrics": (["--once", "--format", "openmetrics"], []),
    "run": (["run"], []),
    "retry": (["retry", "sidecar:web"], []),
    "reclaim": (["reclaim", "sidecar:web"], []),
    "cancel": (["cancel", "run:0123abcd"], []),
    "retry --format json": (["retry", "sidecar:web", "--format", "json"], []),
    "join": (["join", "http://127.0.0.1:9", "--token-file", "/dev/null", "--no-daemon"], []),
}
READS_CONFIG = {"--once", "--once --format json", "--once --format nagios", "--once --format openmetrics", "run",
                "join"}
# The read-only filesystem refuses creating the directory; commands that only read find it absent.
CREATES_STATE = {"run", "join"}


def cases_for(command: str) -> list[str]:
    cases = [c for c in STATE_CASES if c != "state dir on a read-only filesystem" or command in CREATES_STATE]
    return cases + (CONFIG_CASES if command in READS_CONFIG else [])


TABLE = [(command, case, where) for command in COMMANDS for case in cases_for(command)
         for where in ("before", "after")]


def argv_for(command: str, state: str, config: str, where: str) -> list[str]:
    head, _ = COMMANDS[command]
    options = ["--state-dir", state, "--config", config]
    if command.startswith("--once"):  # no subcommand: the options go around the report flags
        return [*options, *head] if where == "before" else [*head, *options]
    return [*options, *head] if where == "before" else [*head, *options]


def judge(command: str, code: int, out: str, err: str) -> None:
    assert code == 2, (code, out, err)
    assert err.count("\n") == 1 and err.startswith("loopctl: ") and "Traceback" not in err, err
    if "json" in command:
        document = json.loads(out)
        assert set(document) == {"status", "exit_code", "error"} and document["exit_code"] == 2
        assert set(document["error"]) == {"code", "message"} and document["error"]["message"] in err
    elif "nagios" in command:
        assert out.count("\n") == 1 and out.startswith("LOOPCTL CRITICAL - "), out
    else:
        assert out == "", out


@pytest.mark.parametrize(("command", "case", "where"), TABLE, ids=[f"{c} | {k} | {w}" for c, k, w in TABLE])
def test_every_command_meets_every_bad_input_in_one_line(bad, command, case, where, monkeypatch):
    state, config = bad[case]()
    monkeypatch.setenv("HOME", str(Path(state).parent))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv_for(command, state, config, where))
    judge(command, code, out.getvalue(), err.getvalue())


@pytest.mark.parametrize("case", STATE_CASES[:3] + CONFIG_CASES)
def test_a_real_process_answers_the_same(bad, case):
    state, config = bad[case]()
    result = subprocess.run([*loopctl_argv(), "--once", "--format", "json", "--state-dir", state, "--config", config],
                            capture_output=True, text=True, timeout=30, check=False, stdin=subprocess.DEVNULL)
    judge("--once --format json", result.returncode, result.stdout, result.stderr)


@requires_root
@pytest.mark.parametrize("command", ["--once --format json", "retry", "run"])
def test_an_unwritable_state_dir_run_as_another_user(shared_dir, command):
    import console.host.daemon  # loaded before the fork: nobody cannot read under /root
    import console.host.observe
    import console.readmodel.report  # noqa: F401

    state = shared_dir / "root-owned"
    state.mkdir(mode=0o755, exist_ok=True)
    config = shared_dir / "c.toml"
    config.write_text("")
    config.chmod(0o644)

    def attempt() -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv_for(command, str(state), str(config), "after"))
        return code, out.getvalue(), err.getvalue()

    answer = as_user(NOBODY, attempt)
    if command == "run":
        assert answer.startswith("(2, '', 'loopctl: state directory ") and "not writable" in answer
    else:  # an observer only reads: no engine owns it, said as the report or the action's answer
        assert "Traceback" not in answer and "Error:" not in answer.split("loopctl:")[0], answer


@pytest.mark.parametrize("fmt", ["text", "json", "nagios", "openmetrics"])
@pytest.mark.parametrize("where", ["after", "before"])
def test_the_demo_once_takes_every_format_before_or_after_the_command(fmt, where):
    from console.cli import parse_args

    argv = ["demo", "--once", "--format", fmt] if where == "after" else ["--format", fmt, "demo", "--once"]
    args = parse_args(argv)
    assert (args.command, args.once, args.format) == ("demo", True, fmt)
