"""The `loopctl` command. Imports are lazy: `--once` and `run` must not load Textual, rich or httpx."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from console import __version__
from console.core.errors import EXIT_BAD_INPUT, EXIT_UNKNOWN, MONITORING_WORDS, LoopctlError
from console.core.printable import printable  # what it prints may carry host text (core/printable.py)

if TYPE_CHECKING:
    from console.core.paths import Paths
    from console.fleet.contexts import HostEntry

VERBS = ("reclaim", "retry", "cancel", "restart", "stop", "start", "trigger", "pause", "resume")


FORMATS = ("text", "json", "nagios", "openmetrics")


class UsageError(LoopctlError):
    code = "usage"


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad command line is one line (usage is what --help is for), and raised, so
    `--format json` can still answer it as JSON."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see `{self.prog} --help`)".removeprefix("loopctl: "))


def _common(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    # Subcommands repeat the global options with SUPPRESS defaults so `loopctl run --state-dir D`
    # and `loopctl --state-dir D run` both work without one overwriting the other.
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument("--state-dir", metavar="DIR", default=default,
                        help="state directory (default: $LOOPCTL_HOME, else $XDG_STATE_HOME/loopctl)")
    parser.add_argument("--config", metavar="FILE", default=default,
                        help="host config (default: $XDG_CONFIG_HOME/loopctl/loopctl.toml; optional)")
    parser.add_argument("--read-only", action="store_true", default=argparse.SUPPRESS if suppress else False,
                        help="refuse every action (reclaim, retry, cancel, restart, stop, start, trigger, pause, "
                             "resume)")
    if suppress:  # the top level has its own, with the report help; after a command it says how errors print
        parser.add_argument("--format", choices=FORMATS, default=argparse.SUPPRESS,
                            help="how a failure is printed (json: a JSON document)")


def _host_option(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    parser.add_argument("--host", metavar="HOST", default=argparse.SUPPRESS if suppress else None,
                        help="another host: ssh://[user@]host[:port][/state-dir], a name from "
                             "$XDG_CONFIG_HOME/loopctl/hosts.toml, or local (default: $LOOPCTL_HOST, else local)")


COMMANDS = ("run", "join", "controlplane", "demo", "logs", "dial-stdio", "fleet", *VERBS)


def _top_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="loopctl",
        description="Operator console for hosts that run AI-agent work. Without a command: the console.",
    )
    parser.add_argument("--version", action="version", version=f"loopctl {__version__}")
    _common(parser, suppress=False)
    _host_option(parser, suppress=False)
    parser.add_argument("--once", action="store_true",
                        help="evaluate once, print a report, exit 0 ok / 1 warning / 2 critical / 3 unknown")
    parser.add_argument("--format", choices=FORMATS, default="text",
                        help="report format for --once (nagios: Monitoring Plugins; openmetrics: Prometheus)")
    return parser


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The console and `--once` name no command, so their parse skips building the commands' parsers
    (about 10 ms of argparse, on the console's first frame). Anything the short parse does not take
    whole goes to the full parser, so help and every error read the same."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not any(arg in COMMANDS or arg in ("-h", "--help") for arg in args):
        parsed, rest = _top_parser().parse_known_args(args)
        if not rest:
            parsed.command = None
            return parsed
    return build_parser().parse_args(args)


def build_parser() -> argparse.ArgumentParser:
    parser = _top_parser()
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    run = sub.add_parser("run", help="run the engine without a screen (for systemd)")
    _common(run, suppress=True)
    run.add_argument("--standby", action="store_true",
                     help="if another engine owns the host, observe it and take over when it exits")
    run.add_argument("--metrics-textfile", metavar="PATH",
                     help="keep a node_exporter textfile (Prometheus text format) up to date at PATH")
    join = sub.add_parser("join", help="join a control plane: host key, seed config, service")
    _common(join, suppress=True)
    join.add_argument("url", metavar="URL")
    join.add_argument("token", metavar="TOKEN", nargs="?", help="join token (visible in ps: prefer --token-file)")
    join.add_argument("--token-file", metavar="FILE", help="read the join token from FILE, or - for stdin")
    join.add_argument("--no-daemon", action="store_true", help="do not install or start a service")
    plane = sub.add_parser("controlplane", help="the reference control plane (for the demo and tests)")
    plane_sub = plane.add_subparsers(dest="plane_command", metavar="COMMAND", required=True)
    serve = plane_sub.add_parser("serve", help="serve the reference control plane over HTTP")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    serve.add_argument("--port", type=int, default=8470, help="port (default 8470)")
    serve.add_argument("--state", metavar="FILE", help="keep hosts and loops in FILE across restarts")
    demo = sub.add_parser("demo", help="a demo host showing every state, with its own control plane")
    demo.add_argument("--state-dir", metavar="DIR", default=argparse.SUPPRESS,
                      help="a new or empty directory for it (default: a temporary one, removed afterwards)")
    demo.add_argument("--once", action="store_true", default=argparse.SUPPRESS,
                      help="print the report once every state shows, then end it")
    demo.add_argument("--format", choices=FORMATS, default=argparse.SUPPRESS,
                      help="report format for --once, as for `loopctl --once` (default text)")
    logs = sub.add_parser("logs", help="a sidecar's log or a run's output, from the engine that owns the host")
    _common(logs, suppress=True)
    logs.add_argument("target", metavar="TARGET", help="sidecar:NAME (its previous launch's log, then its current "
                                                       "one) or run:ID (the run's output)")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing what it writes (ctrl+c ends)")
    logs.add_argument("-n", "--lines", type=_line_count, default=100, metavar="N",
                      help="how many of the last lines to print first (default 100, at most 5000)")
    targets = {"reclaim": "sidecar:NAME: end what an earlier engine left, then relaunch",
               "retry": "sidecar:NAME, loop:ID or run:ID: clear a failure or escalation, or rerun a run",
               "cancel": "run:ID: end a queued or running run and its process group (ID: whole, or its end, "
                         "as the console shows it)",
               "restart": "sidecar:NAME: stop a working sidecar (grace, then SIGKILL) and launch it anew",
               "stop": "sidecar:NAME: stop it and keep it stopped, across reloads and restarts, until started",
               "start": "sidecar:NAME: start a sidecar an operator stopped",
               "trigger": "loop:ID: start its next run now (refused while one runs)",
               "pause": "loop:ID: no new runs, across restarts, until resumed; a running run ends (stop reason "
                        "paused)",
               "resume": "loop:ID: end a local pause"}
    dial = sub.add_parser("dial-stdio", help="bridge stdin/stdout to this host's engine.sock (what --host ssh:// "
                                             "runs on the far side)")
    dial.add_argument("--state-dir", metavar="DIR", default=argparse.SUPPRESS,
                      help="state directory (default: $LOOPCTL_HOME, else $XDG_STATE_HOME/loopctl)")
    fleet = sub.add_parser("fleet", help="every host in $XDG_CONFIG_HOME/loopctl/hosts.toml, one row each")
    fleet.add_argument("--once", action="store_true", default=argparse.SUPPRESS,
                       help="report every host once and exit with the worst: 0 ok / 1 warning / 2 critical / "
                            "3 unknown")
    fleet.add_argument("--format", choices=("text", "json", "nagios", "openmetrics"), default=argparse.SUPPRESS,
                       help="report format for --once")
    fleet.add_argument("--prometheus", metavar="URL",
                       help="read the hosts from Prometheus's HTTP API instead of watching each one")
    fleet.add_argument("--read-only", action="store_true", default=argparse.SUPPRESS,
                       help="refuse every action in the host consoles opened from the fleet")
    for verb in VERBS:
        act = sub.add_parser(verb, help=f"{verb} {targets[verb]}")
        _common(act, suppress=True)
        _host_option(act, suppress=True)
        act.add_argument("target", metavar="TARGET")
    return parser


def _line_count(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of lines") from None
    if not 0 <= count <= 5000:
        raise argparse.ArgumentTypeError(f"{count} lines: give 0 to 5000")
    return count


def _said_format(args: Sequence[str]) -> str:
    """The --format the command line asks for, wherever it stands (for failures before or without a parse)."""
    said = "text"
    for index, arg in enumerate(args):
        if arg == "--format" and index + 1 < len(args):
            said = args[index + 1]
        elif arg.startswith("--format="):
            said = arg.split("=", 1)[1]
    return said if said in FORMATS else "text"


def fail(exc: LoopctlError, report_format: str, *, once: bool) -> int:
    """One line on stderr; `--format json` still a JSON document on stdout and `--once --format nagios`
    still one status line, so a monitor never parses a bare error."""
    print(printable(f"loopctl: {exc.message}", lines=False), file=sys.stderr)
    if report_format == "json":
        import json

        # the report's own words: a monitor reads CRITICAL (bad input, exit 2) or UNKNOWN (exit 3) either way
        status = MONITORING_WORDS.get(exc.exit_code, "UNKNOWN")
        print(json.dumps({"status": status, "exit_code": exc.exit_code,
                          "error": {"code": exc.code, "message": exc.message}}, sort_keys=True))
    elif once and report_format == "nagios":
        from console.readmodel.nagios import unevaluated

        sys.stdout.write(printable(unevaluated(exc.exit_code, exc.message)))
    return exc.exit_code


class InternalError(LoopctlError):
    exit_code = EXIT_UNKNOWN
    code = "internal_error"


def main(argv: Sequence[str] | None = None) -> int:
    raw = list(sys.argv[1:] if argv is None else argv)
    said, once = _said_format(raw), "--once" in raw
    try:
        args = parse_args(raw)
    except UsageError as exc:
        return fail(exc, said, once=once)
    try:
        return _dispatch(args)
    except LoopctlError as exc:
        return fail(exc, getattr(args, "format", said), once=once)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if once:  # monitoring must get a status line and UNKNOWN, not a traceback
            problem = f"could not evaluate: {type(exc).__name__}: {exc}"
            return fail(InternalError(problem), getattr(args, "format", said), once=True)
        raise


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "controlplane":
        from console.reference_plane.server import serve

        return serve(args.host, args.port, Path(args.state).absolute() if args.state else None)
    if args.command == "demo":
        from console.demo import run_demo

        return run_demo(getattr(args, "state_dir", None), once=getattr(args, "once", False),
                        report_format=getattr(args, "format", "text"))
    if args.command is None and args.once:
        _without_typing_extensions()
    from console.core.paths import check_state_dir, resolve_paths

    if args.command == "dial-stdio":  # the forms launch.py does not take itself (options first, say)
        from console.host.dial import dial_here

        return dial_here(getattr(args, "state_dir", None))
    if args.command == "fleet":
        from console.fleet_command import fleet

        return fleet(os.environ, Path.home(), once=args.once, report_format=args.format,
                     prometheus=args.prometheus, read_only=args.read_only)
    state_dir = args.state_dir
    if args.command not in (None, *VERBS) and getattr(args, "host", None):
        raise LoopctlError(f"--host is for the console, --once and the action verbs, not {args.command}: "
                           f"run {args.command} on that host itself")
    if args.command is None or args.command in VERBS:
        entry = _host_entry(args)
        if entry is not None and entry.ssh is not None:
            return _remote(entry, args)
        if entry is not None and state_dir is None:
            state_dir = entry.state_dir
    paths = resolve_paths(state_dir, args.config, os.environ, Path.home())
    if args.command in (None, *VERBS):  # they only read the state dir: say what is wrong with it first
        check_state_dir(paths)
    if args.command == "join":
        from console.controlplane.join import join

        return join(paths, args.url, args.token, args.token_file, no_daemon=args.no_daemon)
    if args.command is None:
        return _once(paths, args.format) if args.once else _console(paths, read_only=args.read_only)
    if args.command in VERBS:  # said to the engine, which runs its own config: the file is not read
        return _action(paths.socket, paths.state_dir, args.command, args.target, read_only=args.read_only)
    if args.command == "logs":
        return _logs(paths.socket, paths.state_dir, args.target, args.lines, follow=args.follow)
    if args.command == "run":
        from console.core.config import load_config
        from console.host import daemon

        textfile = Path(args.metrics_textfile).absolute() if args.metrics_textfile else None
        return daemon.run(paths, load_config(paths), standby=args.standby, read_only=args.read_only,
                          metrics_textfile=textfile)
    raise AssertionError(f"unhandled command {args.command!r}")  # argparse allows no other


def _host_entry(args: argparse.Namespace) -> HostEntry | None:
    """--host, else $LOOPCTL_HOST: None for this host as --state-dir and the environment say."""
    value = getattr(args, "host", None) or os.environ.get("LOOPCTL_HOST") or None
    if value is None:
        return None
    from console.fleet.contexts import hosts_file, resolve_host

    entry = resolve_host(value, hosts_file(os.environ, Path.home()))
    if entry.ssh is not None and getattr(args, "state_dir", None):
        raise LoopctlError(f"--state-dir names a directory on this host; for {entry.name} put it in the URL "
                           f"(ssh://host/state-dir)")
    return entry


def _remote(entry: HostEntry, args: argparse.Namespace) -> int:
    """--host ssh://...: the far engine's snapshot, an action sent to it, or a console on it."""
    from console.host.transport import SshDialer, control_dir_for, ssh_command

    assert entry.ssh is not None
    dialer = SshDialer(entry.name, entry.ssh, ssh_command(os.environ), control_dir_for(os.environ))
    if args.command in VERBS:
        if args.read_only:
            raise LoopctlError(f"{args.command} {args.target} refused: --read-only was given")
        return _told(args.command, args.target, dialer.request("action", verb=args.command, target=args.target))
    if args.once:
        from console.readmodel.report import exit_code, render
        from console.readmodel.snapshot import SNAPSHOT_SCHEMA, Snapshot

        answer = dialer.request("snapshot", schema=SNAPSHOT_SCHEMA)
        if not answer.get("ok"):
            from console.core.errors import OwnerUnavailable

            err = answer.get("error") or {}
            raise OwnerUnavailable(f"the engine on {entry.name} refused: {err.get('message', err)}")
        import time

        snap = Snapshot.from_dict(answer["snapshot"]).at(time.time())  # as of now, however old the version
        sys.stdout.write(printable(render(snap, args.format)))
        return exit_code(snap)
    import gc

    gc.disable()  # as _console does
    from console.tui.source import RemoteSource

    source = RemoteSource(dialer)
    from console.tui.app import run_remote_console

    return run_remote_console(source, read_only=args.read_only)


def _without_typing_extensions() -> None:
    """`--once` is what monitoring runs every minute on every host. msgspec takes typing_extensions when
    it is installed (Textual brings it) and works as well without it; leaving it out of this process
    spares `--once` its import and the stdlib `inspect` behind it, a seventh of its instructions
    (callgrind: 265 M with it, 229 M without; the hand-written records before msgspec took 241 M).
    Nothing `--once` loads needs it, in any format (tests/test_cli.py runs each)."""
    if "typing_extensions" not in sys.modules:
        sys.modules["typing_extensions"] = None  # type: ignore[assignment]  # None: "not importable here"


def _once(paths: Paths, report_format: str) -> int:
    from console.core.clock import SystemClock
    from console.core.config import LoadedConfig, load_config
    from console.core.errors import ConfigError
    from console.host.observe import current_snapshot
    from console.readmodel.report import exit_code, render

    def load() -> LoadedConfig | ConfigError:
        try:
            return load_config(paths)
        except ConfigError as exc:  # a running engine is still reported, with this as a reason
            return exc

    snap = current_snapshot(paths, load, SystemClock())
    sys.stdout.write(printable(render(snap, report_format)))
    return exit_code(snap)


def _console(paths: Paths, *, read_only: bool) -> int:
    import gc

    # Start-up allocates a great many objects and frees almost none: collecting now is wasted work
    # (about 5 % of the first frame here). The console freezes what start-up built and collects again
    # once the first frame is on screen.
    gc.disable()
    from console.tui.source import choose_source

    source = choose_source(paths, read_only=read_only)  # before the UI library loads
    from console.tui.app import run_console

    def open_demo() -> int:
        from console.demo import run_demo

        return run_demo(None, once=False)

    return run_console(source, paths, read_only=read_only, open_demo=open_demo)


def _action(socket_path: Path, state_dir: Path, verb: str, target: str, *, read_only: bool) -> int:
    from console.host.client import NotPermitted, request

    if read_only:
        raise LoopctlError(f"{verb} {target} refused: --read-only was given")
    try:
        answer = request(socket_path, "action", verb=verb, target=target)
    except NotPermitted:
        raise LoopctlError(f"{socket_path} belongs to another user: run loopctl as that user") from None
    if answer is None:
        raise LoopctlError(f"no engine owns {state_dir}: start it with `loopctl run`, then {verb} again")
    return _told(verb, target, answer)


def _told(verb: str, target: str, answer: dict[str, object]) -> int:
    """What the engine answered an action: its message, or its refusal as one line."""
    if not answer.get("ok"):
        err = answer.get("error")
        if not isinstance(err, dict):
            err = {}
        print(printable(f"loopctl: {verb} {target} refused ({err.get('code', 'error')}): {err.get('message', '')}"),
              file=sys.stderr)
        return EXIT_BAD_INPUT
    result = answer.get("result")
    message = result.get("message", "done") if isinstance(result, dict) else "done"
    print(printable(f"{verb} {target}: {message}"))
    return 0


def _logs(socket_path: Path, state_dir: Path, target: str, lines: int, *, follow: bool) -> int:
    """Lines on stdout as the files have them (made printable); which file they come from, and a
    rotation or cut-back seen while following, on stderr, as `tail` names its files."""
    from console.host.client import NoEngine, NotPermitted, tail

    try:
        for answer in tail(socket_path, target, lines, follow=follow):
            if not answer.get("ok"):
                err = answer.get("error") or {}
                print(printable(f"loopctl: logs {target} refused ({err.get('code', 'error')}): "
                                f"{err.get('message', '')}"), file=sys.stderr)
                return EXIT_BAD_INPUT
            chunk = answer.get("chunk")
            if not isinstance(chunk, dict):
                continue
            note = chunk.get("note")
            if note:
                print(printable(f"==> {chunk.get('file')}: {NOTES.get(note, note)} <=="), file=sys.stderr)
            text = "".join(f"{line}\n" for line in chunk.get("lines") or [])
            if text:
                sys.stdout.write(printable(text))
                sys.stdout.flush()
    except NotPermitted:
        raise LoopctlError(f"{socket_path} belongs to another user: run loopctl as that user") from None
    except NoEngine:
        raise LoopctlError(f"no engine owns {state_dir}: logs are read through the engine; start it with "
                           f"`loopctl run`, then logs again") from None
    return 0


NOTES = {"missing": "no such file yet", "rotated": "a new file (the sidecar launched again)",
         "truncated": "cut back past its size cap: reading from its start"}
