"""What the README says of installing and of the shipped data holds: the CPU build of torch
is named the standard way, the replay benchmark's count and its ``@2`` theorems are real,
and the folders the README's commands write are ignored by git (but not the shipped data)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_readme_names_the_cpu_build_of_torch():
    assert "pip install torch --index-url https://download.pytorch.org/whl/cpu" in README


def test_the_replay_benchmark_is_as_the_readme_says():
    from prover.traces import load_traces

    names = sorted(load_traces(None).theorems)
    variants = sorted(n for n in names if "@" in n)
    mentioned = sorted(set(re.findall(r"`(\w+@\d+)`", README)) - {"THEOREM@2"})
    assert mentioned == variants  # every variant explained, and only real ones
    assert f"the `replay` benchmark lists {len(names)}" in README
    base = {n.split("@")[0] for n in names}
    assert f"of {len(base)} miniF2F-test theorems" in README


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="not a git checkout")
def test_the_readmes_output_folders_are_ignored_but_not_the_shipped_data():
    paths = [
        "runs/demo/results.jsonl",
        "data/round-1/train.jsonl",
        "models/round-1/config.json",
        "prover/data/new.jsonl",
    ]
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", *paths], cwd=ROOT, capture_output=True, text=True
    ).stdout.split()
    assert ignored == paths[:3]
