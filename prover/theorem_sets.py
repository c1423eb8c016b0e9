"""Theorem sets: the synthetic set, the theorems of a trace file, miniF2F, or a list file.

    theorems = load_theorems(TheoremSetConfig(benchmark="minif2f", split="valid"), env_spec)

miniF2F theorems carry two addresses. The LeanDojo backend finds them in the repository
yangky11/miniF2F-lean4 at the commit pinned to Lean/Mathlib v4.20.0 (the version
lean-dojo 4.20.0 supports): all valid theorems in ``MiniF2F/Valid.lean``, all test
theorems in ``MiniF2F/Test.lean``, under the names used there (``imo_2006_p3`` is
``imo_2006_p6`` at that commit). The REPL backend compiles ``header + statement`` from
``minif2f.jsonl``. The two agree on 480 of the 488 statements; at the pin 7 test
statements are still their older versions (see shared/data/README.md).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from search import Theorem

from prover.config import BackendSpec, TheoremSetConfig
from prover.data import minif2f_path
from prover.errors import ProverError, did_you_mean
from prover.registry import backend

SPLITS = ("valid", "test")

# miniF2F as LeanDojo reads it: shared/data/minif2f/pins-v4.20.0 holds this commit's pins.
MINIF2F_REPO_URL = "https://github.com/yangky11/miniF2F-lean4"
MINIF2F_COMMIT = "be1732497464bab50cffd486114c4b9ad437182f"
MINIF2F_FILES = {"valid": "MiniF2F/Valid.lean", "test": "MiniF2F/Test.lean"}
# Theorems named differently in that commit's files than in minif2f.jsonl.
MINIF2F_NAMES_AT_PIN = {"imo_2006_p3": "imo_2006_p6"}
def benchmark_of(spec: TheoremSetConfig, env: BackendSpec) -> str:
    """The named theorem set a run uses: ``--benchmark``, else the environment's own."""
    return spec.benchmark or backend("environment", env.name).default_benchmark


def load_theorems(spec: TheoremSetConfig, env: BackendSpec) -> list[Theorem]:
    """The theorems that ``spec`` names, in a stable order, at most ``spec.limit`` of them."""
    if spec.theorems_file:
        theorems = theorems_from_file(spec.theorems_file, spec, env)
    else:
        benchmark = benchmark_of(spec, env)
        if benchmark == "synthetic":
            theorems = [Theorem(f"synthetic_{i:04d}") for i in range(spec.num_theorems)]
        elif benchmark == "replay":
            from prover.traces import load_traces

            traces = env.options.traces if env.name == "replay" else None
            theorems = [Theorem(name) for name in load_traces(traces).names()]
        else:
            theorems = minif2f(spec.split)
    return theorems[: spec.limit] if spec.limit is not None else theorems


def find_theorem(name: str, spec: TheoremSetConfig, env: BackendSpec) -> Theorem:
    """The theorem called ``name`` in the set; "did you mean" when there is none."""
    theorems = load_theorems(dataclasses.replace(spec, limit=None), env)
    by_name = {t.name: t for t in theorems}
    if name in by_name:
        return by_name[name]
    if not spec.theorems_file and benchmark_of(spec, env) == "synthetic":
        if name.startswith("synthetic_"):  # the synthetic set is unbounded
            return Theorem(name)
    if not spec.theorems_file and benchmark_of(spec, env) == "minif2f":
        # A name from the other split is still a miniF2F theorem, and so is a name used at the pin.
        other = {t.name: t for t in minif2f("test" if spec.split == "valid" else "valid")}
        for known in (by_name, other):
            for theorem in known.values():
                if name in (theorem.name, theorem.full_name):
                    return theorem
    where = spec.theorems_file or benchmark_of(spec, env)
    hint = did_you_mean(name, by_name) if len(by_name) <= 1000 else ""
    if hint.startswith("; choose"):
        hint = ""  # listing a whole benchmark helps nobody
    raise ProverError(f"no theorem named '{name}' in {where}{hint}")


def minif2f(split: str, path: str | Path | None = None) -> list[Theorem]:
    """The miniF2F theorems of ``split`` ("valid" or "test"), with their statements and
    their LeanDojo address at the v4.20.0 pin (see the module docstring)."""
    if split not in SPLITS:
        raise ProverError(f"unknown miniF2F split '{split}'; choose 'valid' or 'test'")
    path = Path(path) if path else minif2f_path()
    try:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except FileNotFoundError:
        raise ProverError(f"the miniF2F statements file {path} does not exist (is PROVER_DATA right?)") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ProverError(f"cannot read the miniF2F statements file {path}: {exc}") from None
    return [
        Theorem(
            row["name"],
            statement=row["formal_statement"],
            header=row.get("header", ""),
            repo_url=MINIF2F_REPO_URL,
            commit=MINIF2F_COMMIT,
            file_path=MINIF2F_FILES[split],
            full_name=MINIF2F_NAMES_AT_PIN.get(row["name"], row["name"]),
        )
        for row in rows
        if row.get("split") == split
    ]


def theorems_from_file(path: str | Path, spec: TheoremSetConfig, env: BackendSpec) -> list[Theorem]:
    """A list file: one theorem per line, either a bare name (looked up in the benchmark)
    or a JSON object with at least ``name`` (and any ``Theorem`` field). ``#`` comments."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ProverError(f"cannot read theorem list {path}: {exc.strerror}") from None
    base = dataclasses.replace(spec, theorems_file=None, limit=None)
    theorems = []
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("{"):
            try:
                data = json.loads(line)
                theorems.append(Theorem.from_dict(data))
            except (json.JSONDecodeError, TypeError):
                raise ProverError(f"line {number} of {path} is not a theorem (JSON with a 'name')") from None
            if not theorems[-1].name:
                raise ProverError(f"line {number} of {path} has no theorem name")
        else:
            theorems.append(find_theorem(line, base, env))
    return theorems
