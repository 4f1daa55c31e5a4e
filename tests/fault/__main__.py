"""`python -m tests.fault --cycles 200 --seed N`: a long chaos run; prints its figures, exits 1 on a violation."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from tests.fault.harness import run


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fault", description=__doc__)
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dir", help="where the host lives (default: a new temporary directory)")
    args = parser.parse_args()
    root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="loopctl-fault-"))
    figures = run(root / "host", args.seed, args.cycles)
    print(f"seed {args.seed}: {figures.line()}")
    for violation in figures.violations:
        print(f"  {violation}")
    return 1 if figures.violations else 0


if __name__ == "__main__":
    sys.exit(main())
