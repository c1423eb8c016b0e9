"""Which executor proves a set (``prover.run.batch``): small jobs with a cheap environment
and policy in this process, anything else on Ray; ``prover iterate`` starts Ray once."""

from __future__ import annotations

import json
import shutil

import pytest

from prover.cli import main
from prover.config import BackendSpec, DistributedConfig, RunConfig, apply_flags
from prover.envs.synthetic import SyntheticConfig
from prover.run.batch import SMALL_JOB_THEOREMS, choose_executor


def choice(num_theorems: int = 20, **flags):
    config = apply_flags(RunConfig(), {k: v for k, v in flags.items() if k.startswith("--")})
    if "env" in flags:
        config = RunConfig(env=BackendSpec.default("environment", flags["env"]), distributed=config.distributed)
    if "policy" in flags:
        config = RunConfig(policy=BackendSpec.default("policy", flags["policy"]), distributed=config.distributed)
    return choose_executor(config, num_theorems)


def test_auto_runs_a_small_cheap_job_in_this_process_and_says_so():
    made = choice()
    assert not made.uses_ray
    assert made.line().startswith("running in this process: a small job (20 theorems, the synthetic environment")


@pytest.mark.parametrize(
    "case, reason",
    [
        (dict(env="repl"), "the repl environment runs a Lean process per search"),
        (dict(env="dojo"), "the dojo environment runs a Lean process per search"),
        (dict(policy="hf"), "the hf policy runs a model"),
        (dict(num_theorems=SMALL_JOB_THEOREMS + 1), f"{SMALL_JOB_THEOREMS + 1} theorems"),
        ({"--num-workers": 2}, "--num-workers 2"),
        ({"--ray-address": "auto"}, "--ray-address auto"),
    ],
)
def test_auto_goes_to_ray_for_lean_models_large_sets_or_when_asked(case, reason):
    made = choice(**case)
    assert made.uses_ray and reason in made.line()


def test_one_theorem_runs_in_this_process_even_with_lean_and_a_model():
    assert not choice(1, env="repl").uses_ray and not choice(1, policy="hf").uses_ray


def test_num_workers_zero_is_always_in_this_process():
    assert not choice(SMALL_JOB_THEOREMS * 10, env="repl", **{"--num-workers": 0}).uses_ray


def test_the_readme_demo_runs_in_this_process_by_default(tmp_path, monkeypatch, capsys):
    """``prover prove-split --out runs/demo``: no flag about workers, and no Ray."""
    import prover.run.cluster as cluster

    def no_ray(*args, **kwargs):
        raise AssertionError("the demo started Ray")

    monkeypatch.setattr(cluster.RayExecutor, "__init__", no_ray)
    monkeypatch.chdir(tmp_path)
    main(["prove-split", "--out", "runs/demo", "--no-progress"])  # returns (no exit code) when it succeeds
    out, err = capsys.readouterr()
    assert "running in this process: a small job" in err and "proved" in out
    assert not (tmp_path / "runs" / "demo" / "ray.log").exists()
    # --num-workers auto is the default, and a flag too
    assert main(["prove-split", "--out", "runs/again", "--num-workers", "auto", "--no-progress"]) is None


@pytest.mark.slow
def test_iterate_on_ray_starts_ray_once_for_all_its_rounds(tmp_path, monkeypatch):
    """Two rounds, each proving its set and a held-out set on Ray: one ``ray.init``."""
    import ray

    from search import SearchLimits

    from prover.learn import training
    from prover.learn.iterate import IterateOptions, iterate, prove_in_process_or_on_ray
    from prover.policies.hf import POLICY_METADATA
    from prover.theorem_sets import load_theorems

    from tests.tiny_llama import save_tiny_llama

    tiny = save_tiny_llama(tmp_path / "tiny")

    def fake_train(data, out, options, progress=None):
        shutil.copytree(tiny, out)
        (out / POLICY_METADATA).write_text(json.dumps({"prompt": "goal_proofstep", "final_loss": 0.5}))
        return out

    monkeypatch.setattr(training, "train_policy", fake_train)
    inits = []
    # Ray may be up in this process already (the session's ray_local): then none is started.
    already_up = ray.is_initialized()
    real_init = ray.init
    monkeypatch.setattr(ray, "init", lambda *a, **k: (inits.append(k), real_init(*a, **k))[1])
    config = RunConfig(
        env=BackendSpec("environment", "synthetic", SyntheticConfig(rule="learnable", depth=3)),
        limits=SearchLimits(max_expansions=4, tactics_per_node=4),
        distributed=DistributedConfig(num_workers=1, searches_per_worker=2, worker_cpus=0.5),
    )
    theorems = load_theorems(config.theorems, config.env)[:3]
    results = iterate(
        config,
        theorems,
        tmp_path / "it",
        2,
        IterateOptions(max_new_tokens=6),
        prove=prove_in_process_or_on_ray,
        echo=lambda line: None,
    )
    assert [r.round for r in results] == [1, 2]
    assert len(inits) == (0 if already_up else 1)
    # The session shut down the Ray it started, and left alone one it found.
    assert ray.is_initialized() == already_up
