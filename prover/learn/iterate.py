"""Expert iteration: prove, keep the proofs, train on them, prove again.

``prover iterate --rounds N --out DIR`` runs N rounds. Round r

1. proves the theorem set with the policy of round r - 1 (round 1: the policy the flags
   name, a model-free one by default) into the run directory ``DIR/round-r``, and, with
   held-out theorems, proves those too into ``DIR/round-r/heldout`` with the same policy
   and budget (held-out theorems are never trained on);
2. exports the training data of rounds 1..r (``prover.learn.export``) into ``DIR/round-r/data``;
3. trains the policy of round r from the policy of round r - 1 (a tiny Llama from scratch
   when that one is not a model) into ``DIR/round-r/policy``, and writes
   ``DIR/round-r/round.json`` with the round's figures.

A round with ``round.json`` is finished: running the same command again skips it, and a
round that was stopped halfway resumes (its run directories skip finished theorems). The
settings are kept in ``DIR/iterate.json``; a rerun with other settings is refused, except
for ``--rounds`` (more rounds continue the iteration) and the Ray settings.

    prover iterate --env synthetic --rule learnable --depth 8 --num-theorems 80 \\
        --num-heldout 80 --max-expansions 16 --rounds 3 --out runs/iter
    prover report runs/iter/round-*            # the training set, round by round
    prover report runs/iter/round-*/heldout    # the held-out set
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence, TypedDict

from search import Theorem

from prover.config import BackendSpec, RunConfig, TheoremSetConfig, flag_targets
from prover.errors import ProverError
from prover.learn.export import ExportStats
from prover.learn.training import TrainOptions
from prover.run.cluster import RaySession
from prover.run.rundir import RunDir
from prover.settings import Settings, flag_of, setting, setting_fields, to_dict

SETTINGS_FILE = "iterate.json"
ROUND_FILE = "round.json"
HELDOUT_LIST = "heldout.txt"


@dataclass(frozen=True)
class IterateOptions(Settings):
    """How each round exports and trains (one object; the rounds' searches follow the RunConfig).

    Its settings are the flags of ``prover iterate`` beside the run's own, with those of
    ``train`` (``prover.learn.training.TrainOptions``, the same defaults as ``train-policy``)
    but for ``TRAIN_FIXED``, which each round's policy decides; ``train_flags`` renames a
    training flag that a run's flag already uses. ``iterate.json`` keeps them all, so a rerun
    with other settings is refused naming them.
    """

    valid_fraction: float = setting(
        0.0,
        "Share of the proved theorems held out of training as a validation split.",
        min=0,
        max=1,
        max_open=True,
    )
    all_proving_edges: bool = setting(
        False, "Train on every tactic that led to a proved state, not only shortest proofs."
    )
    decoding: str = setting(
        "beam",
        "The trained policies of rounds 2.. when round 1's policy is not a model: their decoding.",
        choices=("beam", "sampling"),
        flag="--trained-decoding",
    )
    max_new_tokens: int = setting(
        16,
        "The trained policies of rounds 2.. when round 1's policy is not a model: their new-token limit "
        "(a tactic and its end: beams that never end run to this length).",
        min=1,
        flag="--trained-max-new-tokens",
    )
    dpo: bool = setting(
        False,
        "After each round's fine-tuning, a DPO stage on the preference pairs of the round's data "
        "(proof tactic over a failed one at the same state; needs TRL: pip install 'lean-prover[dpo]').",
    )
    dpo_beta: float = setting(
        0.1, "--dpo: how strongly the policy is held to the model it starts from.", min=0, min_open=True
    )
    dpo_steps: int = setting(50, "--dpo: optimiser steps.", min=1)
    curate: bool = setting(
        False,
        "Curate each round's data: drop the theorems the round's policy proved in one expansion (nothing "
        "to learn), keep proof steps only from proofs that passed the re-check, one record per (state, tactic).",
    )
    retrain_every: int = setting(
        0,
        "Every N rounds, train from the base model (round 1's model, or a tiny one from scratch) on all the "
        "data so far instead of from the last round's policy; 0: never.",
        min=0,
    )
    train: TrainOptions = field(default_factory=TrainOptions)  # not a flag itself: its settings are

    TRAIN_FIXED: ClassVar[tuple[str, ...]] = ("base_model", "prompt")

    @staticmethod
    def train_flags() -> dict[str, str]:
        """The flags of ``train``'s settings that a run's flag already uses (``--seed`` of the
        policy, ``--device``), renamed ``--train-...``: field name -> flag."""
        taken = flag_targets(include_hidden=True)
        return {f.name: "--train-" + flag_of(f)[2:] for f in setting_fields(TrainOptions) if flag_of(f) in taken}

    def to_dict(self) -> dict:
        return {**to_dict(self), "train": self.train.to_dict()}


class RunFigures(TypedDict):
    """A round's pass rate on a theorem set (as summary.json counts it)."""

    num_theorems: int
    num_proved: int
    pass_rate: float


class RoundTimes(TypedDict):
    """Seconds a round spent proving, exporting and training."""

    prove: float
    export: float
    train: float
    total: float


@dataclass(frozen=True)
class RoundResult:
    """What one round did (``round.json``)."""

    round: int
    policy: dict[str, Any]  # the policy that proved this round's theorems (``BackendSpec.to_dict``)
    train: RunFigures
    heldout: RunFigures | None
    export: ExportStats
    trained_policy: str | None  # the model trained at the end of the round (the next round's policy)
    train_loss: float | None
    time_s: RoundTimes
    trained_from: str | None = None  # the model fine-tuned (None: a tiny model from scratch)
    dpo: dict | None = None  # the DPO stage: preference pairs, beta, losses

    @classmethod
    def from_json(cls, data: dict) -> "RoundResult":
        """A ``round.json`` read back."""
        return cls(**{**data, "export": ExportStats(**data["export"])})

    def line(self) -> str:
        parts = [f"round {self.round}: train {_rate(self.train)}"]
        if self.heldout is not None:
            parts.append(f"held-out {_rate(self.heldout)}")
        proof_steps = sum(self.export.proof_records.values())
        parts.append(f"{proof_steps} proof steps exported")
        if self.trained_policy:
            parts.append(f"trained {self.trained_policy} (loss {self.train_loss:.3f})")
        if self.dpo:
            parts.append(f"DPO on {self.dpo['num_preferences']} pairs (loss {self.dpo['final_loss']:.3f})")
        return "; ".join(parts) + f" [{self.time_s.get('total', 0):.0f}s]"


def _rate(figures: RunFigures) -> str:
    return f"{figures['num_proved']}/{figures['num_theorems']} ({figures['pass_rate']:.1%})"


ProveFunction = Callable[[Sequence[Theorem], RunConfig, RunDir], Any]


def prove_in_process_or_on_ray(theorems: Sequence[Theorem], config: RunConfig, run: RunDir):
    """Prove ``theorems`` into ``run`` on the executor ``prove-split`` would use, without its
    progress display."""
    from prover.run.batch import executor_for
    from prover.run.driver import prove_set

    return prove_set(theorems, run, executor_for(config, theorems))


def iterate(
    config: RunConfig,
    theorems: Sequence[Theorem],
    out_dir: str | Path,
    rounds: int,
    options: IterateOptions = IterateOptions(),
    heldout: Sequence[Theorem] | None = None,
    prove: ProveFunction = prove_in_process_or_on_ray,
    echo: Callable[[str], None] = print,
) -> list[RoundResult]:
    """Run (or continue) ``rounds`` rounds of expert iteration in ``out_dir``; see the
    module docstring. Returns every round's result, finished earlier or now."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # a bar per model loaded or saved says nothing here
    out = Path(out_dir)
    _check_settings(out, config, theorems, options, heldout)
    _require_trace(config, [*theorems, *(heldout or [])])
    heldout_config = None
    if heldout:
        heldout_config = dataclasses.replace(
            config, theorems=TheoremSetConfig(theorems_file=str((out / HELDOUT_LIST).resolve()))
        )
    results: list[RoundResult] = []
    with RaySession():  # the rounds that run on Ray share one Ray, started at most once
        for number in range(1, rounds + 1):
            round_dir = out / f"round-{number}"
            done = round_dir / ROUND_FILE
            if done.is_file():
                result = RoundResult.from_json(json.loads(done.read_text(encoding="utf-8")))
                echo(f"{result.line()} (finished earlier)")
            else:
                result = _run_round(
                    number, round_dir, out, config, theorems, heldout, heldout_config, options, results, prove, echo
                )
                _write_json(done, asdict(result))
                echo(result.line())
            results.append(result)
    return results


def _require_trace(config: RunConfig, theorems: Sequence[Theorem]) -> None:
    """What ``prove-split`` checks before it starts: for --env dojo, LeanDojo has traced every
    theorem's repository (else each search would trace, or fail, inside its start-up)."""
    if config.env.capabilities.needs_trace:
        from prover.registry import load

        load(config.env.capabilities.module, "require_traced")(theorems)


def _run_round(
    number,
    round_dir: Path,
    out: Path,
    config: RunConfig,
    theorems,
    heldout,
    heldout_config,
    options: IterateOptions,
    earlier: list[RoundResult],
    prove: ProveFunction,
    echo,
) -> RoundResult:
    from prover.learn.export import export_runs

    started = time.perf_counter()
    policy = config.policy if number == 1 else _policy_for(config.policy, _latest_model(earlier), options)
    round_config = dataclasses.replace(config, policy=policy)
    echo(f"round {number}: proving {len(theorems)} theorems with the {_describe(policy)}")
    with _run_dir(round_dir, round_config) as run:
        train_summary = prove(theorems, round_config, run)
    heldout_summary = None
    if heldout:
        echo(f"round {number}: proving {len(heldout)} held-out theorems")
        heldout_round = dataclasses.replace(heldout_config, policy=policy)
        with _run_dir(round_dir / "heldout", heldout_round) as run:
            heldout_summary = prove(heldout, heldout_round, run)
    proved_at = time.perf_counter()

    runs = [out / f"round-{n}" for n in range(1, number + 1)]
    easy = _proved_in_one_expansion(round_dir) if options.curate else set()
    stats = export_runs(
        runs,
        round_dir / "data",
        valid_fraction=options.valid_fraction,
        seed=options.train.seed,
        all_proving_edges=options.all_proving_edges,
        exclude_theorems=easy,
        only_rechecked=options.curate,
        dedupe_across_theorems=options.curate,
    )
    exported_at = time.perf_counter()

    trained, loss, base, dpo = None, None, None, None
    if sum(stats.proof_records.values()) == 0:
        echo(f"round {number}: no proof to learn from; the next round keeps this round's policy")
    else:
        retrain = options.retrain_every > 0 and number % options.retrain_every == 0
        base = _model_of(config.policy) if retrain else _model_of(policy)
        echo(
            f"round {number}: training on {stats.proof_records['train']} proof steps "
            f"({'from ' + base if base else 'a tiny model from scratch'}{', retraining from the base' if retrain else ''})"
        )
        # LoRA adapts a model; the first tiny model from scratch is trained whole.
        train = dataclasses.replace(options.train, base_model=base, lora=options.train.lora and base is not None)
        trained, loss = _train(round_dir / "policy", round_dir / "data", train)
        if options.dpo and stats.preference_pairs["train"] > 0:
            echo(f"round {number}: DPO on {stats.preference_pairs['train']} preference pairs")
            trained, dpo = _train_dpo(round_dir / "policy-dpo", round_dir / "data", trained, options)
    finished = time.perf_counter()
    return RoundResult(
        round=number,
        policy=policy.to_dict(),
        train=_figures(train_summary),
        heldout=_figures(heldout_summary) if heldout_summary is not None else None,
        export=stats,
        trained_policy=str(trained) if trained else None,
        train_loss=loss,
        trained_from=base,
        dpo=dpo,
        time_s={
            "prove": round(proved_at - started, 1),
            "export": round(exported_at - proved_at, 1),
            "train": round(finished - exported_at, 1),
            "total": round(finished - started, 1),
        },
    )


def _figures(summary) -> RunFigures:
    return {"num_theorems": summary.num_theorems, "num_proved": summary.num_proved, "pass_rate": summary.pass_rate}


def _run_dir(path: Path, config: RunConfig) -> RunDir:
    """The round's run directory: continued where a stopped round left it, else new."""
    if (path / "config.json").is_file():
        run = RunDir.open(path)
        if _comparable(run.config()) != _comparable(config):
            run.close()
            raise ProverError(f"{path} holds a run with other settings than this iteration's; remove it to redo it")
        return run
    return RunDir.create(path, config)


def _train(out: Path, data: Path, options: TrainOptions) -> tuple[Path, float]:
    """Train into ``out`` through a temporary directory, so a model directory is whole or absent."""
    from prover.learn.training import train_policy
    from prover.policies.hf import POLICY_METADATA

    if (out / POLICY_METADATA).is_file():  # trained before the round was stopped
        return out, json.loads((out / POLICY_METADATA).read_text(encoding="utf-8"))["final_loss"]
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    train_policy(data, partial, options, progress=None)
    shutil.rmtree(out, ignore_errors=True)
    os.replace(partial, out)
    return out, json.loads((out / POLICY_METADATA).read_text(encoding="utf-8"))["final_loss"]


def _train_dpo(out: Path, data: Path, model: Path, options: IterateOptions) -> tuple[Path, dict]:
    """DPO from the round's fine-tuned ``model`` into ``out``, whole or absent like ``_train``."""
    from prover.learn.dpo import train_dpo
    from prover.policies.hf import POLICY_METADATA

    if not (out / POLICY_METADATA).is_file():
        partial = out.with_name(out.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        train = dataclasses.replace(options.train, steps=options.dpo_steps, learning_rate=None)
        train_dpo(data, partial, model, train, beta=options.dpo_beta, progress=None)
        shutil.rmtree(out, ignore_errors=True)
        os.replace(partial, out)
    return out, json.loads((out / POLICY_METADATA).read_text(encoding="utf-8"))["dpo"]


def _proved_in_one_expansion(run_dir: Path) -> set[str]:
    """Theorems the run proved with one expansion: its policy already knows them."""
    easy = set()
    results = run_dir / "results.jsonl"
    if results.is_file():
        for line in results.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a torn last line
            if record.get("status") == "proved" and record.get("num_expansions", 0) <= 1:
                easy.add(record["theorem"])
    return easy


def _latest_model(results: list[RoundResult]) -> str | None:
    for result in reversed(results):
        if result.trained_policy:
            return result.trained_policy
    return None


def _model_of(policy: BackendSpec) -> str | None:
    """The model a policy runs, if it is a model policy (hf, vllm)."""
    return getattr(policy.options, "model", None) or None


def _policy_for(first: BackendSpec, model: str | None, options: IterateOptions) -> BackendSpec:
    """The policy of a later round: round 1's with the newest trained model."""
    if model is None:
        return first  # nothing trained yet: the same policy again
    if _model_of(first) is not None:
        return BackendSpec(first.kind, first.name, dataclasses.replace(first.options, model=model))
    from prover.policies.hf import HFConfig

    return BackendSpec(
        "policy", "hf", HFConfig(model=model, decoding=options.decoding, max_new_tokens=options.max_new_tokens)
    )


def _describe(policy: BackendSpec) -> str:
    model = _model_of(policy)
    return f"{policy.name} policy" + (f" ({model})" if model else "")


def _check_settings(out: Path, config: RunConfig, theorems, options: IterateOptions, heldout) -> None:
    """Write ``iterate.json`` on the first run; on a rerun, refuse settings that differ."""
    settings = {
        "config": _comparable(config),
        "theorems": [t.name for t in theorems],
        "heldout": [t.name for t in heldout or ()],
        "options": options.to_dict(),
    }
    path = out / SETTINGS_FILE
    if path.is_file():
        saved = json.loads(path.read_text(encoding="utf-8"))
        differing = _differences(saved if isinstance(saved, dict) else {}, settings)
        if differing:
            raise ProverError(
                f"{out} holds an iteration with other settings (these differ: {'; '.join(differing)}); "
                "rerun it with the same flags (only --rounds and the Ray settings may change), or choose another --out"
            )
        return
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ProverError(f"{out} exists and is not an iteration directory; choose another --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ProverError(f"cannot create {out}: {exc.strerror or exc}") from None
    if heldout:
        lines = [json.dumps(t.to_dict(), ensure_ascii=False) + "\n" for t in heldout]  # a --theorems-file
        (out / HELDOUT_LIST).write_text("".join(lines), encoding="utf-8")
    _write_json(path, settings)


def _differences(saved: dict, settings: dict) -> list[str]:
    """One phrase per setting of ``iterate.json`` that differs, named: ``--max-expansions 9 (it was 8)``
    for a run setting, ``train.steps 20 (it was 150)`` for a training one, and the theorem lists."""
    phrases = []
    for key in ("theorems", "heldout"):
        old, new = saved.get(key) or [], settings[key]
        if old != new:
            which = "held-out theorems" if key == "heldout" else "theorems"
            phrases.append(
                f"the {which} ({len(new)} named now, {len(old)} before"
                + (", in another order" if sorted(old) == sorted(new) else "")
                + ")"
            )
    for key in ("config", "options"):
        old, new = _flat(saved.get(key) or {}), _flat(settings[key])
        for name in dict.fromkeys([*new, *old]):
            if old.get(name) != new.get(name):
                shown = _flag_of(name) if key == "config" else _option_flag(name)
                phrases.append(f"{shown} {_shown(new.get(name))} (it was {_shown(old.get(name))})")
    return phrases


def _flat(data: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _flag_of(name: str) -> str:
    """``limits.max_expansions`` -> ``--max-expansions``; ``env.name`` -> ``--env``."""
    section, _, field_name = name.partition(".")
    if field_name == "name" and section in ("env", "policy"):
        return f"--{section}"
    from prover.config import flag_targets

    for flag, targets in flag_targets(include_hidden=True).items():
        if any(t.section == section and t.field.name == field_name for t in targets):
            return flag
    return name


def _option_flag(name: str) -> str:
    """``train.steps`` -> ``--train-steps`` or ``--steps`` (as ``prover iterate`` names it); ``dpo`` -> ``--dpo``."""
    from prover.learn.training import TrainOptions
    from prover.settings import flag_of, setting_fields

    owner, field_name = (TrainOptions, name[len("train.") :]) if name.startswith("train.") else (IterateOptions, name)
    for f in setting_fields(owner):
        if f.name == field_name:
            return IterateOptions.train_flags().get(f.name, flag_of(f)) if owner is TrainOptions else flag_of(f)
    return name


def _shown(value) -> str:
    return "(none)" if value is None else json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value


def _comparable(config: RunConfig) -> dict:
    """The settings that decide results (the Ray settings do not)."""
    data = config.to_dict()
    data.pop("distributed", None)
    return data


def _write_json(path: Path, data: dict) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(temporary, path)
