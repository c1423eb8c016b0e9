"""Training data from saved searches: ``prover export RUN_DIR... --out DATA``.

Every search a run saves (``RUN_DIR/trees/*.json``, or ``*.json.gz``) holds every tactic tried and what it
did. ``export_runs`` turns them into one data directory:

    DATA/train.jsonl    records of the training theorems
    DATA/valid.jsonl    records of the validation theorems (``valid_fraction`` of them)
    DATA/export.json    where the data came from (run directories, their policies), the
                        settings of the export and its statistics

The split is by theorem, seeded: a theorem's records are all in one file. Each line is a
record of the trace format (``prover.traces``), so ``TraceSet.load`` and ``--env replay
--traces DATA/train.jsonl`` read an export as they read recorded Lean interactions:

    theorem         the theorem's name
    state_before    the goal state the tactic was run on
    tactic          the tactic
    state_after     the state it led to, or null (an error, a finished or given-up proof)
    error           why it failed (absent when it did not)
    proof_finished  true when it closed every goal
    step            the depth of state_before in the search (0 for the initial state)

with four fields more:

    label           "proof": the tactic is on a proof (every shortest proof of the tree, or,
                    with ``all_proving_edges``, every tactic leading to a proved state);
                    "failed": the tactic errored or led to a state the search found failed
    rejected        on proof records: the failed tactics tried at the same state, best
                    first, so (state_before, tactic, each rejected) is a preference pair
    logprob         the policy's log-probability of the tactic when the search ran
    source          the tree file the record comes from

"failed" records are taken at every state of an exported proof (the negatives of the
preference pairs) and, from every tree, proved or not, for each tactic that led to a
failed state. A value model (``prover train-critic``) learns "provable" from the
``state_before`` of proof records and "not provable" from the ``state_after`` of failed
records that have one. A record appears once per (theorem, state_before, tactic); when
runs disagree, "proof" wins over "failed". Trees of proofs that failed the from-scratch
re-check (status "rejected") are left out.

    stats = export_runs(["runs/round-1"], "data/round-1", valid_fraction=0.1)
    data = read_training_data("data/round-1")   # pairs, preferences, values of train.jsonl
"""

from __future__ import annotations

import json
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from search import DEAD, QED, ROOT, EdgeOutcome, SearchTree, Status, TreeFormatError

from prover.errors import ProverError
from prover.traces import read_trace_records

EXPORT_FORMAT = 1
SPLITS = ("train", "valid")
METADATA = "export.json"
PROOF, FAILED = "proof", "failed"


@dataclass
class ExportStats:
    """What an export read and wrote."""

    runs: int = 0
    trees: int = 0
    proved_trees: int = 0
    skipped_trees: int = 0  # rejected proofs, unreadable files
    theorems: dict[str, int] = field(default_factory=lambda: {s: 0 for s in SPLITS})
    proof_records: dict[str, int] = field(default_factory=lambda: {s: 0 for s in SPLITS})
    failed_records: dict[str, int] = field(default_factory=lambda: {s: 0 for s in SPLITS})
    preference_pairs: dict[str, int] = field(default_factory=lambda: {s: 0 for s in SPLITS})
    provable_states: dict[str, int] = field(default_factory=lambda: {s: 0 for s in SPLITS})
    failed_states: dict[str, int] = field(default_factory=lambda: {s: 0 for s in SPLITS})
    duplicates_dropped: int = 0
    curated_out: int = 0  # trees left out or stripped of proof records by curation

    def lines(self) -> list[str]:
        """The statistics, a line each, for the terminal."""
        per_split = lambda counts: ", ".join(f"{counts[s]} {s}" for s in SPLITS)  # noqa: E731
        return [
            f"read {self.trees} trees from {self.runs} run(s): {self.proved_trees} proved"
            + (f", {self.skipped_trees} skipped (rejected or unreadable)" if self.skipped_trees else ""),
            f"theorems: {per_split(self.theorems)}",
            f"proof steps (state, tactic): {per_split(self.proof_records)}",
            f"failed tactics: {per_split(self.failed_records)}",
            f"preference pairs (state, proof tactic, failed tactic): {per_split(self.preference_pairs)}",
            f"value examples: provable states {per_split(self.provable_states)}; "
            f"failed states {per_split(self.failed_states)}",
            f"duplicate records dropped: {self.duplicates_dropped}",
        ]


# ---- from a tree to records ---------------------------------------------------------------


def proof_edge_list(tree: SearchTree, all_proving_edges: bool = False) -> list[tuple[int, int, str]]:
    """(source, target, tactic) of every edge on a shortest proof of ``tree``, in search
    order from the root; with ``all_proving_edges``, of every edge into a proved state.

    Empty when the root is not proved.
    """
    if tree.status(ROOT) is not Status.PROVED:
        return []
    edges = []
    if all_proving_edges:
        for node in tree.graph.nodes:
            if node in (QED, DEAD) or tree.status(node) is not Status.PROVED:
                continue
            for target, tactic, _ in tree.tactic_edges(node):
                if tree.status(target) is Status.PROVED:
                    edges.append((node, target, tactic))
        return edges
    seen = {ROOT}
    frontier = [ROOT]
    while frontier:  # breadth first along the edges that bring the proof one step closer
        node = frontier.pop(0)
        wanted = tree.node(node)["distance"] - 1
        for target, tactic, _ in tree.tactic_edges(node):
            child = tree.graph.nodes[target]
            if child["status"] == Status.PROVED and child["distance"] == wanted:
                edges.append((node, target, tactic))
                if target != QED and target not in seen:
                    seen.add(target)
                    frontier.append(target)
    return edges


def _record(tree: SearchTree, theorem: str, source: int, target: int, tactic: str, label: str, where: str) -> dict:
    attrs = tree.graph.succ[source][target][tactic]
    record: dict = {"theorem": theorem, "state_before": tree.state(source), "tactic": tactic}
    outcome = attrs["outcome"]
    if outcome == EdgeOutcome.PROVED:
        record.update(state_after=None, proof_finished=True)
    elif outcome == EdgeOutcome.STATE:
        record.update(state_after=tree.state(target), proof_finished=False)
    elif outcome == EdgeOutcome.GIVEN_UP:
        record.update(state_after=None, proof_finished=False)  # the trace format's "given up"
    else:  # an error, a timeout, a cycle: a failed tactic
        record.update(state_after=None, error=attrs["error"] or outcome, proof_finished=False)
    record.update(step=tree.node(source)["depth"], label=label, logprob=attrs["logprob"], source=where)
    return record


def _failed(tree: SearchTree, target: int) -> bool:
    return target == DEAD or (target != QED and tree.status(target) is Status.FAILED)


def tree_records(tree: SearchTree, source: str = "", all_proving_edges: bool = False) -> list[dict]:
    """The records of one search tree (see the module docstring), proof records first."""
    theorem = tree.graph.graph.get("theorem", "")
    records = []
    proof_nodes: dict[int, list[dict]] = {}
    for node, target, tactic in proof_edge_list(tree, all_proving_edges):
        record = _record(tree, theorem, node, target, tactic, PROOF, source)
        proof_nodes.setdefault(node, []).append(record)
        records.append(record)
    failed_keys = set()
    for node, proof_records in proof_nodes.items():
        failed = [(target, tactic, attrs) for target, tactic, attrs in tree.tactic_edges(node) if _failed(tree, target)]
        failed.sort(key=lambda item: -item[2]["logprob"])
        for record in proof_records:
            record["rejected"] = [tactic for _, tactic, _ in failed]
        for target, tactic, _ in failed:
            failed_keys.add((node, tactic))
            records.append(_record(tree, theorem, node, target, tactic, FAILED, source))
    for node in tree.graph.nodes:
        if node in (QED, DEAD):
            continue
        for target, tactic, _ in tree.tactic_edges(node):
            if target not in (QED, DEAD) and tree.status(target) is Status.FAILED and (node, tactic) not in failed_keys:
                failed_keys.add((node, tactic))
                records.append(_record(tree, theorem, node, target, tactic, FAILED, source))
    return records


# ---- from run directories to a data directory ---------------------------------------------


def _tree_files(run_dir: Path) -> list[Path]:
    if not (run_dir / "trees").is_dir():
        raise ProverError(f"{run_dir} is not a run directory with saved trees (it has no trees/)")
    return sorted(p for p in (run_dir / "trees").iterdir() if p.name.endswith((".json", ".json.gz")))


def _run_summary(run_dir: Path) -> dict:
    """What the export remembers of a run: its path and the policy and environment it used."""
    summary: dict = {"path": str(run_dir)}
    try:
        config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return summary
    summary["policy"] = config.get("policy")
    summary["env"] = config.get("env")
    return summary


def split_theorems(theorems: Iterable[str], valid_fraction: float, seed: int = 0) -> dict[str, str]:
    """theorem -> "train" or "valid": ``round(valid_fraction * n)`` theorems, chosen by
    ``seed``, go to "valid" (at least one when the fraction is positive and there are two
    or more theorems, so a validation split asked for is never empty)."""
    names = sorted(set(theorems))
    count = round(valid_fraction * len(names))
    if valid_fraction > 0 and count == 0 and len(names) >= 2:
        count = 1
    chosen = set(random.Random(seed).sample(names, count)) if count else set()
    return {name: ("valid" if name in chosen else "train") for name in names}


def export_runs(
    run_dirs: Sequence[str | Path],
    out_dir: str | Path,
    valid_fraction: float = 0.0,
    seed: int = 0,
    all_proving_edges: bool = False,
    exclude_theorems: Iterable[str] = (),
    only_rechecked: bool = False,
    dedupe_across_theorems: bool = False,
) -> ExportStats:
    """Write the training data of every saved tree of ``run_dirs`` into ``out_dir``;
    see the module docstring. ``out_dir`` may exist; its data files are replaced.

    Curation (``prover iterate --curate``): ``exclude_theorems`` are left out (theorems the
    policy already proves in one expansion); with ``only_rechecked`` a tree gives proof
    records only when its saved result says the proof passed the re-check ("proved"); with
    ``dedupe_across_theorems`` a (state, tactic) is one record however many theorems reach it.
    """
    if not 0 <= valid_fraction < 1:
        raise ProverError(f"--valid-fraction must be at least 0 and below 1, not {valid_fraction:g}")
    if not run_dirs:
        raise ProverError("name at least one run directory to export")
    stats = ExportStats(runs=len(run_dirs))
    by_key: dict[tuple[str, str, str], dict] = {}
    theorems: set[str] = set()
    excluded = set(exclude_theorems)
    for run_dir in map(Path, run_dirs):
        for path in _tree_files(run_dir):
            try:
                tree = SearchTree.load(path)
            except TreeFormatError:
                stats.skipped_trees += 1
                continue
            result = tree.graph.graph.get("result") or {}
            if result.get("status") == "rejected":
                stats.skipped_trees += 1
                continue
            theorem = tree.graph.graph.get("theorem", path.name)
            if theorem in excluded:
                stats.curated_out += 1
                continue
            stats.trees += 1
            stats.proved_trees += tree.status(ROOT) is Status.PROVED
            theorems.add(theorem)
            records = tree_records(tree, str(path), all_proving_edges)
            if only_rechecked and tree.status(ROOT) is Status.PROVED and result.get("status") != "proved":
                stats.curated_out += 1  # no record says the proof passed the re-check: only its failures count
                records = [r for r in records if r["label"] != PROOF]
            for record in records:
                key = ("" if dedupe_across_theorems else record["theorem"], record["state_before"], record["tactic"])
                kept = by_key.get(key)
                if kept is None:
                    by_key[key] = record
                    continue
                stats.duplicates_dropped += 1
                if kept["label"] == FAILED and record["label"] == PROOF:
                    by_key[key] = record
                elif kept["label"] == PROOF and record["label"] == PROOF:
                    kept["rejected"] = list(dict.fromkeys(kept["rejected"] + record["rejected"]))
    # A tactic that some run found on a proof is not a rejected alternative anywhere.
    proof_keys = {key for key, record in by_key.items() if record["label"] == PROOF}
    for (theorem, state, _), record in by_key.items():
        if record["label"] == PROOF:
            record["rejected"] = [t for t in record["rejected"] if (theorem, state, t) not in proof_keys]

    split_of = split_theorems(theorems, valid_fraction, seed)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ProverError(f"cannot create the data directory {out}: {exc.strerror or exc}") from None
    lines: dict[str, list[str]] = {split: [] for split in SPLITS}
    for split in SPLITS:
        chosen = [r for r in by_key.values() if split_of[r["theorem"]] == split]
        # Proof records first, each theorem's together, in search order: a stable file.
        chosen.sort(key=lambda r: (r["label"] != PROOF, r["theorem"]))
        lines[split] = [json.dumps(r, ensure_ascii=False) for r in chosen]
        stats.theorems[split] = sum(1 for s in split_of.values() if s == split)
        data = training_data(chosen)
        stats.proof_records[split] = sum(r["label"] == PROOF for r in chosen)
        stats.failed_records[split] = sum(r["label"] == FAILED for r in chosen)
        stats.preference_pairs[split] = len(data.preferences)
        stats.provable_states[split] = sum(provable for _, provable in data.values)
        stats.failed_states[split] = sum(not provable for _, provable in data.values)
    for split in SPLITS:
        _write(out / f"{split}.jsonl", "".join(line + "\n" for line in lines[split]))
    metadata = {
        "format": EXPORT_FORMAT,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "runs": [_run_summary(Path(r)) for r in run_dirs],
        "valid_fraction": valid_fraction,
        "seed": seed,
        "all_proving_edges": all_proving_edges,
        "curation": {
            "excluded_theorems": sorted(excluded),
            "only_rechecked": only_rechecked,
            "dedupe_across_theorems": dedupe_across_theorems,
        },
        "stats": asdict(stats),
    }
    _write(out / METADATA, json.dumps(metadata, indent=2, ensure_ascii=False) + "\n")
    return stats


def _write(path: Path, text: str) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)  # a data file is whole or absent


# ---- reading data back --------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingData:
    """What the trainers learn from, each item once.

    ``pairs``: (state, tactic) on proofs, for the policy. ``preferences``: (state, proof
    tactic, failed tactic). ``values``: (state, provable) for the value model, a state
    that some record shows provable counting as provable.
    """

    pairs: list[tuple[str, str]]
    preferences: list[tuple[str, str, str]]
    values: list[tuple[str, bool]]


def data_file(data: str | Path, split: str = "train") -> Path:
    """The JSONL file of ``split`` in a data directory, or ``data`` itself if it is a file."""
    path = Path(data)
    if path.is_dir():
        path = path / f"{split}.jsonl"
        if not path.is_file():
            raise ProverError(f"{data} is not a data directory made by prover export (it has no {split}.jsonl)")
        return path
    if not path.is_file():
        raise ProverError(f"{data} does not exist; give a data directory made by prover export, or a JSONL file")
    return path


def read_records(path: str | Path) -> list[dict]:
    """The records of a JSONL file in the trace format (an export's split, or a trace file)."""
    return read_trace_records(path)


def training_data(records: Iterable[dict]) -> TrainingData:
    """Pairs, preferences and value examples of records (see ``TrainingData``).

    Records without a ``label`` (a plain trace file) are on a proof when Lean accepted the
    tactic; they give pairs only.
    """
    pairs: dict[tuple[str, str], None] = {}
    preferences: dict[tuple[str, str, str], None] = {}
    values: dict[str, bool] = {}
    for record in records:
        state, tactic = record["state_before"], record["tactic"].strip()
        label = record.get("label")
        if label is None:
            if not record.get("error") and tactic:
                pairs[(state, tactic)] = None
            continue
        if label == PROOF:
            pairs[(state, tactic)] = None
            for rejected in record.get("rejected") or ():
                preferences[(state, tactic, rejected)] = None
            values[state] = True
            if isinstance(record.get("state_after"), str):
                values[record["state_after"]] = True
        elif label == FAILED and isinstance(record.get("state_after"), str):
            values.setdefault(record["state_after"], False)
    return TrainingData(list(pairs), list(preferences), list(values.items()))


def read_training_data(data: str | Path, split: str = "train") -> TrainingData:
    """``training_data`` of a data directory's split (or of one JSONL file)."""
    return training_data(read_records(data_file(data, split)))


def provenance(data: str | Path) -> dict:
    """What a model trained on ``data`` records about it: the path and, for an export,
    its ``export.json`` (runs, settings, statistics)."""
    path = Path(data)
    found: dict = {"data": str(path.resolve())}
    metadata = path / METADATA if path.is_dir() else path.parent / METADATA
    try:
        found["export"] = json.loads(metadata.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    return found
