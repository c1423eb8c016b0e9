"""MCTS and RMaxTS through the other environments: the replay of recorded Lean steps (in
process and on Ray) and the stand-in Lean behind the real lean-interact."""

from __future__ import annotations

import json

import pytest

from search import SearchLimits, SearchStatus, Theorem, get_algorithm

from prover.config import BackendSpec, RunConfig, SearchConfig, TheoremSetConfig
from prover.envs.replay import ReplayConfig, ReplayEnv
from prover.policies.replay import ReplayPolicyConfig
from prover.traces import load_traces

from tests.test_distributed import on_ray, outcomes, prove_in_process
from tests.test_env_repl import traces_file  # noqa: F401 (a fixture of the stand-in test below)
from tests.test_repl_cli import prover, saved_result, user  # noqa: F401 (user: a fixture)


@pytest.mark.parametrize("algorithm", ["mcts", "rmaxts"])
def test_on_replay_every_step_keeps_the_invariants_and_proofs_pass_the_recheck(algorithm, traces_path):
    from prover.policies.replay import build as replay_policy

    traces = load_traces(str(traces_path))
    policy = replay_policy(ReplayPolicyConfig(traces=str(traces_path)))
    search = get_algorithm(algorithm)
    names = traces.names()[:15]
    results = [
        search(
            Theorem(name),
            policy,
            ReplayEnv(traces),
            SearchLimits(max_expansions=16),
            on_expansion=lambda tree, node: tree.check_invariants(),
        )
        for name in names
    ]
    proved = [r for r in results if r.status is SearchStatus.PROVED]  # PROVED: replayed from scratch
    assert len(proved) >= 10
    assert all(r.status in (SearchStatus.PROVED, SearchStatus.OPEN, SearchStatus.FAILED) for r in results)


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["mcts", "rmaxts"])
def test_on_ray_the_algorithm_gives_the_in_process_results(algorithm, tmp_path, traces_path, ray_local):
    from prover.run.cluster import RayExecutor
    from prover.run.driver import prove_set
    from prover.run.rundir import RunDir
    from prover.theorem_sets import load_theorems

    config = RunConfig(
        env=BackendSpec("environment", "replay", ReplayConfig(traces=str(traces_path))),
        policy=BackendSpec("policy", "replay", ReplayPolicyConfig(traces=str(traces_path))),
        theorems=TheoremSetConfig(theorem_set="replay", limit=12),
        limits=SearchLimits(max_expansions=3, tactics_per_node=4),
        search=SearchConfig(algorithm=algorithm),
    )
    theorems = load_theorems(config.theorems, config.env)
    expected = outcomes(prove_in_process(theorems, config, tmp_path / "in-process").records())
    assert any(status == "proved" for status, _ in expected.values())
    ray_config = on_ray(config)
    run = RunDir.create(tmp_path / "on-ray", ray_config)
    prove_set(theorems, run, RayExecutor(ray_config))
    assert outcomes(run.records()) == expected
    assert json.loads((run.path / "config.json").read_text())["search"]["algorithm"] == algorithm


@pytest.mark.slow
@pytest.mark.standin
@pytest.mark.parametrize("algorithm", ["mcts", "rmaxts"])
def test_attack_through_the_standin_repl_with_the_algorithm(algorithm, user, tmp_path):  # noqa: F811
    env, project, home, flags = user
    done = prover(
        "attack",
        "mathd_algebra_478",
        "--env",
        "repl",
        "--policy",
        "fixed",
        "--algorithm",
        algorithm,
        "--tactic",
        "norm_num",
        "--tactic",
        "rw [h₁, h₂, h₃]",
        *flags,
        "--tree-out",
        str(tmp_path / "tree.json"),
        env=env,
        cwd=home,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result = saved_result(tmp_path / "tree.json")
    assert (result["status"], result["proof"]) == ("proved", ["rw [h₁, h₂, h₃]", "norm_num"])  # re-checked
