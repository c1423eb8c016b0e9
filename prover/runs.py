"""Run directories: what a batch run was asked, and everything it finished, on disk.

    RUN_DIR/config.json     the RunConfig, written once
    RUN_DIR/results.jsonl   one line per finished theorem, appended and fsync'd as each ends
    RUN_DIR/trees/*.json    one search tree per theorem (SearchTree.save)
    RUN_DIR/summary.json    pass rate over the whole theorem set, rewritten as results come

A run killed at any moment keeps every line it wrote; a torn last line (the process died
mid-write) is dropped on the next open, and a resumed run skips every finished theorem.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Iterable

from search import SearchResult

from prover.config import RunConfig
from prover.errors import ProverError


def tree_filename(theorem: str) -> str:
    """A safe, unique file name for a theorem's tree (names may hold spaces or symbols)."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", theorem).strip("_.")[:80] or "theorem"
    if slug == theorem:
        return f"{slug}.json"
    return f"{slug}-{hashlib.blake2b(theorem.encode(), digest_size=4).hexdigest()}.json"


class RunDir:
    """A run directory; ``create`` starts one, ``open`` continues one."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.config_path = self.path / "config.json"
        self.results_path = self.path / "results.jsonl"
        self.summary_path = self.path / "summary.json"
        self.trees_dir = self.path / "trees"

    @classmethod
    def create(cls, path: str | Path, config: RunConfig) -> "RunDir":
        run = cls(path)
        if run.config_path.exists():
            raise ProverError(
                f"{run.path} already holds a run; continue it with --resume {run.path} or choose another --out"
            )
        run.trees_dir.mkdir(parents=True, exist_ok=True)
        run.config_path.write_text(json.dumps(config.to_dict(), indent=2))
        run.results_path.touch()
        return run

    @classmethod
    def open(cls, path: str | Path) -> "RunDir":
        run = cls(path)
        if not run.config_path.exists():
            raise ProverError(f"{run.path} is not a run directory (it has no config.json)")
        run.trees_dir.mkdir(exist_ok=True)
        run.results_path.touch()
        return run

    def config(self) -> RunConfig:
        try:
            return RunConfig.from_dict(json.loads(self.config_path.read_text()))
        except (json.JSONDecodeError, TypeError, ValueError) as exc:
            raise ProverError(f"{self.config_path} is not a readable run config ({exc})") from None

    def records(self) -> list[dict]:
        """Every finished theorem's record, first one kept if a name repeats."""
        self._drop_torn_tail()
        return read_records(self.results_path)

    def finished(self) -> set[str]:
        return {record["theorem"] for record in self.records()}

    def _drop_torn_tail(self) -> None:
        """Cut a last line that has no newline: a write the process did not finish."""
        with open(self.results_path, "rb+") as handle:
            data = handle.read()
            if data and not data.endswith(b"\n"):
                handle.truncate(data.rfind(b"\n") + 1)

    def append(self, record: dict) -> None:
        """Append one record as a single write, and make it durable before returning."""
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode()
        with open(self.results_path, "ab") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())

    def save(self, result: SearchResult, record: dict) -> None:
        """Keep one finished search: its tree first, then its line in results.jsonl."""
        if result.tree is not None:
            path = self.trees_dir / tree_filename(result.theorem)
            temporary = path.with_suffix(".tmp")
            result.tree.save(temporary, extra=record)
            os.replace(temporary, path)  # a tree file is whole or absent
            record = {**record, "tree": str(path.relative_to(self.path))}
        self.append(record)

    def write_summary(self, theorem_names: Iterable[str]) -> dict:
        summary = summarize(self.records(), list(theorem_names))
        temporary = self.summary_path.with_suffix(".tmp")
        temporary.write_text(json.dumps(summary, indent=2))
        os.replace(temporary, self.summary_path)
        return summary


def read_records(results_path: Path) -> list[dict]:
    """The records of ``results.jsonl``, first kept if a theorem repeats (as ``RunDir`` does).

    A last line without its newline is a write still in progress, or one the process died
    in; it is skipped, never cut, so reading a live run leaves it alone.
    """
    text = results_path.read_text(encoding="utf-8")
    lines = text.split("\n")
    complete = lines[:-1]  # the part after the last newline is empty or unfinished
    records: dict[str, dict] = {}
    for number, line in enumerate(complete, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            records.setdefault(record["theorem"], record)
        except (json.JSONDecodeError, KeyError, TypeError):
            raise ProverError(f"line {number} of {results_path} is not a result record") from None
    return list(records.values())


def summarize(records: list[dict], theorem_names: list[str]) -> dict:
    """Pass rate over the whole theorem set: unfinished and failed theorems count against it."""
    wanted = set(theorem_names)
    done = [r for r in records if r["theorem"] in wanted]
    counts: dict[str, int] = {}
    for record in done:
        counts[record["status"]] = counts.get(record["status"], 0) + 1
    proved = counts.get("proved", 0)
    total = len(wanted)
    return {
        "num_theorems": total,
        "num_finished": len(done),
        "num_proved": proved,
        "pass_rate": proved / total if total else 0.0,
        "status_counts": counts,
        "total_expansions": sum(r.get("num_expansions", 0) for r in done),
        "total_wall_time_s": sum(r.get("wall_time_s", 0.0) for r in done),
    }
