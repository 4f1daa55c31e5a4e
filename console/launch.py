"""The `loopctl` executable's first module. Nearly every command line goes straight to console.cli;
the exception is the one a far host runs for every ssh session a fleet or `--host` opens,
`loopctl dial-stdio [--state-dir D]` as transport.ssh_argv writes it, which goes to the bridge without
argparse and the rest of cli's imports (dial.py says why). Any other form of dial-stdio (`--help`, the
options before the command, a value argparse would refuse) takes the ordinary way, so it reads the same."""

from __future__ import annotations

import sys

# typing itself costs the lean path ~5 ms; mypy takes any name TYPE_CHECKING as true
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence


def lean_dial(args: Sequence[str]) -> tuple[str, ...] | None:
    """The state dir (or none) of `dial-stdio`, `dial-stdio --state-dir D` or `dial-stdio --state-dir=D`;
    None for every other command line. As a tuple: () is "the default state dir"."""
    if not args or args[0] != "dial-stdio":
        return None
    rest = list(args[1:])
    if not rest:
        return ()
    if len(rest) == 1 and rest[0].startswith("--state-dir="):
        rest = ["--state-dir", rest[0].removeprefix("--state-dir=")]
    if len(rest) == 2 and rest[0] == "--state-dir" and rest[1] and not rest[1].startswith("-"):
        return (rest[1],)
    return None


def main() -> int:
    said = lean_dial(sys.argv[1:])
    if said is not None:
        from console.host.dial import dial_here  # noqa: PLC0415  (the lean path's one import)

        return dial_here(said[0] if said else None)
    from console.cli import main as cli_main  # noqa: PLC0415

    return cli_main()
