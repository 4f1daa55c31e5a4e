"""The `loopctl` command. Imports are lazy: `--once` and `run` must not load Textual, rich or httpx."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from console import __version__
from console.core.errors import EXIT_BAD_INPUT, EXIT_UNKNOWN, LoopctlError
from console.core.printable import printable  # what it prints may carry host text (core/printable.py)

if TYPE_CHECKING:
    from console.core.paths import Paths

VERBS = ("reclaim", "retry", "cancel", "restart", "stop", "start", "trigger", "pause", "resume")


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


COMMANDS = ("run", "join", "controlplane", "demo", "logs", *VERBS)


def _top_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="loopctl",
        description="Operator console for hosts that run AI-agent work. Without a command: the console.",
    )
    parser.add_argument("--version", action="version", version=f"loopctl {__version__}")
    _common(parser, suppress=False)
    parser.add_argument("--once", action="store_true",
                        help="evaluate once, print a report, exit 0 ok / 1 warning / 2 critical / 3 unknown")
    parser.add_argument("--format", choices=("text", "json", "nagios", "openmetrics"), default="text",
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
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
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
    demo.add_argument("--state-dir", metavar="DIR", help="a new or empty directory for it (default: a temporary one, "
                                                         "removed afterwards)")
    demo.add_argument("--once", action="store_true", help="print the report once every state shows, then end it")
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
    for verb in VERBS:
        act = sub.add_parser(verb, help=f"{verb} {targets[verb]}")
        _common(act, suppress=True)
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


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return _dispatch(args)
    except LoopctlError as exc:
        print(printable(f"loopctl: {exc.message}"), file=sys.stderr)
        if getattr(args, "once", False) and getattr(args, "format", "") == "nagios":
            from console.readmodel.nagios import unevaluated

            sys.stdout.write(printable(unevaluated(exc.exit_code, exc.message)))
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if getattr(args, "once", False):  # monitoring must get a status line and UNKNOWN, not a traceback
            print(printable(f"LOOPCTL UNKNOWN - could not evaluate: {type(exc).__name__}: {exc}"))
            return EXIT_UNKNOWN
        raise


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "controlplane":
        from console.reference_plane.server import serve

        return serve(args.host, args.port, Path(args.state).absolute() if args.state else None)
    if args.command == "demo":
        from console.demo import run_demo

        return run_demo(args.state_dir, once=args.once)
    from console.core.paths import resolve_paths

    paths = resolve_paths(args.state_dir, args.config, os.environ, Path.home())
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


def _once(paths: Paths, report_format: str) -> int:
    from console.core.clock import SystemClock
    from console.core.config import LoadedConfig, load_config
    from console.core.errors import ConfigError
    from console.host.observe import current_snapshot
    from console.readmodel.report import exit_code, render

    loaded: LoadedConfig | ConfigError
    try:
        loaded = load_config(paths)
    except ConfigError as exc:  # a running engine is still reported, with this as a reason
        loaded = exc
    snap = current_snapshot(paths, loaded, SystemClock())
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

    return run_console(source, paths, read_only=read_only)


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
    if not answer.get("ok"):
        err = answer.get("error") or {}
        print(printable(f"loopctl: {verb} {target} refused ({err.get('code', 'error')}): {err.get('message', '')}"),
              file=sys.stderr)
        return EXIT_BAD_INPUT
    result = answer.get("result") or {}
    print(printable(f"{verb} {target}: {result.get('message', 'done')}"))
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
