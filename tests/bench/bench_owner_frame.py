"""Benchmark: instructions the console owning an empty host executes to its first frame (valgrind's
callgrind counts them: immune to the machine's load), this checkout beside a base commit's.

    .venv/bin/python tests/bench/bench_owner_frame.py [--base c22de76]

Each side runs `loopctl` as its first command does on a new host (no config, the engine starting
inside the console), headless at 120x40, from its own tree on PYTHONPATH (the base checked out with
`git worktree`), with its bytecode compiled first (as a regular install has it: an interpreter
compiling loopctl's sources at every start counts that too) and its state directory made by one
run before the one counted (as on every start but a host's first). The console quits once its first
frame is drawn. No target: a wall-clock first frame is bench_tui.py's; this one says whether the
code does more work, which a slow spell of a shared machine cannot.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

PROBE = r'''
# The owning console on an empty host, headless, to its first frame, then out (either tree).
# Nothing is imported ahead of the cli's own order: console.tui.app is patched as it loads.
import sys
from importlib.machinery import PathFinder


def patch(module):
    import os
    if os.environ.get("STAGE") == "noapp":  # everything but the app's run: imports, owner prepared
        def no_run(source, *a, **k):
            import asyncio
            owner = getattr(source, "owner", None)
            if owner is not None:
                asyncio.run(owner.stop())
            return 0
        module.run_console = no_run
        return
    from textual._context import active_app
    from textual.app import App
    real_run, real_collect = App.run, module._collect_again

    def headless_run(self, *a, **k):
        return real_run(self, *a, headless=True, size=(120, 40), **k)

    def first_frame_then_quit():
        real_collect()
        active_app.get().exit(0)
    App.run = headless_run
    module._collect_again = first_frame_then_quit


class Hook:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name != "console.tui.app":
            return None
        spec = PathFinder.find_spec(name, path, target)
        real_exec = spec.loader.exec_module

        def exec_module(module):
            real_exec(module)
            patch(module)
        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, Hook)
from console import cli  # noqa: E402
sys.exit(cli.main([]))
'''


def count(tree: Path, work: Path) -> int:
    home = work / f"home-{tree.name}"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    probe = work / "probe.py"
    probe.write_text(PROBE)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "LOOPCTL_", "PYTHONDONTWRITEBYTECODE"))}
    env.update(HOME=str(home), LOOPCTL_HOME=str(home / "state"), PYTHONPATH=str(tree), STAGE="frame")
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "console")], check=True)
    subprocess.run([sys.executable, str(probe)], env=env, cwd=home, check=True)  # the state dir, made once
    out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
                          str(probe)], env=env, cwd=home, capture_output=True, text=True, check=True)
    return int(re.search(r"Collected : (\d+)", out.stderr).group(1))  # type: ignore[union-attr]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", default="c22de76")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("bench: valgrind is not installed")
    with tempfile.TemporaryDirectory(prefix="loopctl-bench-owner-") as tmp:
        work = Path(tmp)
        base = work / "base"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(base), args.base], check=True)
        try:
            today, before = count(REPO, work), count(base, work)
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(base)], check=False)
    print("the console owning an empty host, to its first frame (headless, 120x40), instructions:")
    print(f"  today:        {today / 1e6:8.1f} M")
    print(f"  base {args.base}: {before / 1e6:8.1f} M   ({(today - before) / before * 100:+.1f} %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
