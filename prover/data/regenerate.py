"""Rebuild the shipped data files from the recorded copies (see ``DATA.md``).

    python -m prover.data.regenerate ../shared/data/minif2f            # into prover/data/
    python -m prover.data.regenerate ../shared/data/minif2f --out DIR

``minif2f.jsonl`` is copied byte for byte; ``tactic_traces.jsonl`` is split line by line,
bytes unchanged and order kept, into the miniF2F steps (``tactic_traces.jsonl``) and the Lean
REPL test fixtures (``repl_fixtures.jsonl``) by ``prover.data.is_repl_fixture``.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from prover.data import MINIF2F_FILE, REPL_FIXTURES_FILE, TRACES_FILE, is_repl_fixture


def split_trace_lines(lines: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    """(miniF2F lines, REPL fixture lines) of a recorded trace file, each line unchanged."""
    minif2f, fixtures = [], []
    for line in lines:
        if not line.strip():
            continue
        (fixtures if is_repl_fixture(json.loads(line)) else minif2f).append(line)
    return minif2f, fixtures


def regenerate(source_dir: Path, out_dir: Path) -> dict[str, int]:
    """Write the three shipped files into ``out_dir``; returns each file's line count."""
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source_dir / MINIF2F_FILE, out_dir / MINIF2F_FILE)
    recorded = (source_dir / TRACES_FILE).read_bytes().splitlines(keepends=True)
    minif2f, fixtures = split_trace_lines(recorded)
    (out_dir / TRACES_FILE).write_bytes(b"".join(minif2f))
    (out_dir / REPL_FIXTURES_FILE).write_bytes(b"".join(fixtures))
    num_problems = len((out_dir / MINIF2F_FILE).read_bytes().splitlines())
    return {MINIF2F_FILE: num_problems, TRACES_FILE: len(minif2f), REPL_FIXTURES_FILE: len(fixtures)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source_dir", type=Path, help=f"directory holding {MINIF2F_FILE} and {TRACES_FILE}")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent, help="where to write [default: this package's directory]"
    )
    args = parser.parse_args(argv)
    for name, count in regenerate(args.source_dir, args.out).items():
        print(f"{args.out / name}: {count} lines")


if __name__ == "__main__":
    main()
