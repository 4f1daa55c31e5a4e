"""The README is part of the product: its config example must load, its commands must be the ones CI runs."""

import re
from pathlib import Path

from console.core.config import parse_config

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_config_example_is_valid():
    text = README.read_text()
    block = re.search(r"```toml\n(.*?)```", text, re.S)
    assert block is not None
    config = parse_config(block.group(1).encode(), README)
    assert config.host.name == "edge-1"
    assert [s.name for s in config.sidecar] == ["agent-monitor"] and [lp.id for lp in config.loop] == ["docs"]


def test_the_readme_starts_with_exactly_two_setup_commands_and_ci_runs_the_second():
    text = README.read_text()
    first_block = re.search(r"```sh\n(.*?)```", text, re.S).group(1).strip().splitlines()
    assert len(first_block) == 2
    assert first_block[0].endswith(".venv/bin/loopctl")
    assert " -e " not in first_block[0]  # an operator's install: bytecode compiled, no editable finder (bench_tui)
    assert first_block[1].endswith(".venv/bin/python -m pytest") and "[test]" in first_block[1]
    ci = (README.parent / ".ci" / "run").read_text()
    pattern = re.search(r"grep -m1 -E '(.*?)' README.md", ci).group(1)
    assert re.match(pattern, first_block[1])
