"""The value model: the ``value_mixed`` scorer, the transformers critic on a tiny Llama,
training it from an export (``prover train-critic``), and searches that use it."""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import replace

import pytest
import torch

from search import (
    NodeView,
    SearchLimits,
    Theorem,
    ValueMixed,
    best_first_search,
    get_scorer,
)

from prover.config import BackendSpec, DistributedConfig, RunConfig, SearchConfig
from prover.envs.synthetic import RULE, SyntheticConfig, SyntheticEnv, features, heldout_theorems
from prover.errors import ProverError
from prover.learn.export import export_runs
from prover.policies.critic import CRITIC_METADATA, LABELS, CriticConfig, HFCritic, build, label_logprobs
from prover.policies.fixed import FixedConfig, FixedPolicy
from prover.policies.hf import load_model
from prover.run.driver import InProcessExecutor, prove_set, search_theorem
from prover.run.rundir import RunDir
from prover.run.serving import BatchingServer

from tests.tiny_llama import STATES, save_tiny_llama

LEARNABLE = BackendSpec("environment", "synthetic", SyntheticConfig(rule="learnable", depth=6))


# ---- the scorer -------------------------------------------------------------------------------


def test_value_mixed_adds_the_weighted_value_to_the_log_prob():
    assert ValueMixed(2.0)(NodeView(cumulative_logprob=-1.0, depth=1, value=-0.5)) == -2.0
    assert ValueMixed(2.0)(NodeView(cumulative_logprob=-1.0, depth=1, value=None)) == -1.0
    assert get_scorer("value_mixed") == ValueMixed(1.0) and ValueMixed.needs_value
    assert get_scorer("value_mixed", weight=2.0) == ValueMixed(2.0)  # the run's --value-weight
    assert get_scorer("cumulative", weight=2.0) is get_scorer("cumulative")  # no weight to take


def test_value_mixed_prefers_a_less_likely_state_the_critic_believes_in():
    likely_hopeless = NodeView(cumulative_logprob=-0.5, depth=1, value=-6.0)
    unlikely_promising = NodeView(cumulative_logprob=-2.0, depth=1, value=-0.1)
    assert get_scorer("cumulative")(likely_hopeless) > get_scorer("cumulative")(unlikely_promising)
    assert ValueMixed(1.0)(unlikely_promising) > ValueMixed(1.0)(likely_hopeless)


# ---- the critic on a tiny Llama ---------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_critic(tmp_path_factory):
    model, tokenizer = load_model(str(save_tiny_llama(tmp_path_factory.mktemp("tiny-critic"))), "cpu")
    return HFCritic(model, tokenizer, CriticConfig(batch_size=3))


def test_critic_scores_are_log_probabilities_of_yes_between_yes_and_no(tiny_critic):
    scores = tiny_critic.score(list(STATES))
    assert len(scores) == len(STATES)
    assert all(math.isfinite(s) and s <= 0 for s in scores)
    assert scores == pytest.approx([tiny_critic.score([s])[0] for s in STATES], abs=1e-5)  # batching changes nothing
    assert tiny_critic.score([]) == []


def test_label_logprobs_sum_the_label_tokens_log_probs(tiny_critic):
    tokenizer, model = tiny_critic.tokenizer, tiny_critic.model
    prompt = tokenizer(tiny_critic.render(STATES[0]))["input_ids"]
    with torch.no_grad():
        got = label_logprobs(model, [prompt], tiny_critic.label_ids, tokenizer.pad_token_id)[0]
        for column, label in enumerate(tiny_critic.label_ids):
            ids = torch.tensor([prompt + label])
            logprobs = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)
            expected = sum(logprobs[len(prompt) - 1 + i, token].item() for i, token in enumerate(label))
            assert got[column].item() == pytest.approx(expected, abs=1e-4)


def test_search_stores_the_critics_value_on_every_state(tiny_critic):
    result = best_first_search(
        Theorem("synthetic_0001"),
        FixedPolicy(),
        SyntheticEnv(LEARNABLE.options),
        SearchLimits(max_expansions=4),
        ValueMixed(1.0),
        value_model=tiny_critic,
    )
    values = [attrs["value"] for node, attrs in result.tree.graph.nodes(data=True) if node >= 0]
    assert values and all(isinstance(v, float) and v <= 0 for v in values)


@pytest.fixture(scope="module")
def tiny_critic_dir(tmp_path_factory):
    """A critic directory (the tiny Llama, untrained), for the paths that load one by name."""
    return save_tiny_llama(tmp_path_factory.mktemp("tiny-critic-dir"))


def test_the_batching_server_serves_the_critic(tiny_critic):
    server = BatchingServer(target=tiny_critic, max_wait_ms=20)

    async def two_searches():
        await server.ready()
        return await asyncio.gather(server.score(list(STATES[:2])), server.score(list(STATES[2:4])))

    first, second = asyncio.run(two_searches())
    assert first + second == pytest.approx(tiny_critic.score(list(STATES[:4])), abs=1e-5)
    assert server.stats.num_batches == 1  # both searches' states in one forward pass


def test_a_server_with_a_critic_batches_score_calls_with_propose_calls(tiny_critic_dir):
    server = BatchingServer(BackendSpec("policy", "fixed", FixedConfig()), max_wait_ms=20, critic=str(tiny_critic_dir))

    async def a_search_and_another():
        await server.ready()
        return await asyncio.gather(server.propose([STATES[0]], 2), server.score(list(STATES[:2])))

    proposals, values = asyncio.run(a_search_and_another())
    assert proposals == FixedPolicy().propose([STATES[0]], 2)
    assert values == pytest.approx(build(CriticConfig(model=str(tiny_critic_dir))).score(list(STATES[:2])), abs=1e-5)
    stats = server.stats.to_dict()
    assert stats["num_batches"] == 1 and stats["states_by_method"] == {"propose": 1, "score": 2}


def test_a_server_whose_critic_cannot_load_says_so_from_ready(tmp_path):
    server = BatchingServer(BackendSpec("policy", "fixed", FixedConfig()), critic=str(tmp_path / "nothing"))
    with pytest.raises(ProverError, match="no such directory; pass --critic PATH"):
        asyncio.run(server.ready())
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "llama", "hidden_size": "wide"}')
    server = BatchingServer(BackendSpec("policy", "fixed", FixedConfig()), critic=str(broken))
    with pytest.raises(ProverError, match=f"could not load the critic {broken}: "):  # names the model that failed
        asyncio.run(server.ready())


# ---- runs with a critic -----------------------------------------------------------------------


def run_config(**search) -> RunConfig:
    return RunConfig(
        env=LEARNABLE,
        limits=SearchLimits(max_expansions=4),
        search=SearchConfig(**search),
        distributed=DistributedConfig(num_workers=0),
    )


def test_value_mixed_without_a_critic_is_one_sentence(capsys):
    with pytest.raises(ProverError, match="--scorer value_mixed needs a value model: give --critic DIR"):
        search_theorem(Theorem("synthetic_0000"), FixedPolicy(), run_config(scorer="value_mixed"))
    from prover.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["attack", "synthetic_0000", "--scorer", "value_mixed"])
    assert exited.value.code == 2
    assert "needs a value model" in capsys.readouterr().err


def test_a_run_with_a_value_model_records_its_values(tiny_critic, tmp_path):
    config = run_config(scorer="value_mixed", critic="given in-process", value_weight=2.0)
    run = RunDir.create(tmp_path / "run", config)
    prove_set(
        [Theorem("synthetic_0000"), Theorem("synthetic_0001")],
        run,
        InProcessExecutor(config, FixedPolicy(), value_model=tiny_critic),
    )
    from search import SearchTree

    for path in sorted((tmp_path / "run" / "trees").iterdir()):
        tree = SearchTree.load(path)
        assert tree.node(0)["value"] == pytest.approx(tiny_critic.score([tree.state(0)])[0], abs=1e-5)


def test_a_missing_critic_directory_is_one_sentence(tmp_path):
    with pytest.raises(ProverError, match="cannot load model .*: no such directory; pass --critic PATH"):
        search_theorem(Theorem("synthetic_0000"), FixedPolicy(), run_config(critic=str(tmp_path / "nothing")))


# ---- training a critic --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def round_one(tmp_path_factory):
    """Round 1 of the learnable benchmark, small: the fixed policy on 24 theorems, exported."""
    root = tmp_path_factory.mktemp("critic-data")
    config = RunConfig(
        env=LEARNABLE, limits=SearchLimits(max_expansions=12), distributed=DistributedConfig(num_workers=0)
    )
    run = RunDir.create(root / "run", config)
    prove_set([Theorem(f"synthetic_{i:04d}") for i in range(24)], run, InProcessExecutor(config))
    export_runs([root / "run"], root / "data", valid_fraction=0.25)
    return root / "data"


SMALL = dict(
    vocab_size=300,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=1,
    num_attention_heads=2,
    num_key_value_heads=1,
)


def test_train_critic_writes_a_value_model_a_search_loads(round_one, tmp_path):
    from prover.learn.training import TinyLlamaShape, TrainOptions, train_critic

    out = train_critic(
        round_one,
        tmp_path / "critic",
        TrainOptions(steps=2, batch_size=4, shape=TinyLlamaShape(**SMALL)),
        progress=None,
    )
    metadata = json.loads((out / CRITIC_METADATA).read_text())
    assert metadata["labels"] == list(LABELS) and metadata["num_provable"] > 0 and metadata["num_failed"] > 0
    assert metadata["provenance"]["export"]["runs"][0]["env"]["rule"] == "learnable"
    result = search_theorem(Theorem("synthetic_0000"), FixedPolicy(), run_config(scorer="value_mixed", critic=str(out)))
    assert result.tree.node(0)["value"] is not None


def test_prover_train_critic_on_an_export(round_one, tmp_path, capsys):
    from prover.cli import main

    main(
        [
            "train-critic",
            "--data",
            str(round_one),
            "--out",
            str(tmp_path / "critic"),
            "--steps",
            "2",
            "--vocab-size",
            "300",
            "--device",
            "cpu",
        ]
    )
    assert "value model saved to" in capsys.readouterr().out
    assert json.loads((tmp_path / "critic" / CRITIC_METADATA).read_text())["steps"] == 2


def test_train_critic_needs_both_kinds_of_state(tmp_path):
    from prover.learn.training import train_critic

    data = tmp_path / "data"
    data.mkdir()
    (data / "train.jsonl").write_text(
        json.dumps(
            {
                "theorem": "t",
                "state_before": "⊢ a",
                "tactic": "x",
                "state_after": None,
                "proof_finished": True,
                "label": "proof",
            }
        )
        + "\n"
    )
    with pytest.raises(ProverError, match="needs provable and failed states; .* has 1 provable and 0 failed"):
        train_critic(data, tmp_path / "critic", progress=None)


@pytest.mark.slow
def test_a_trained_critic_tells_live_goals_from_dead_ends_it_never_saw(round_one, tmp_path):
    from prover.learn.training import TinyLlamaShape, TrainOptions, train_critic

    out = train_critic(
        round_one,
        tmp_path / "critic",
        TrainOptions(
            steps=80, shape=TinyLlamaShape(vocab_size=320, hidden_size=64, intermediate_size=128, num_hidden_layers=2)
        ),
        progress=None,
    )
    critic = build(CriticConfig(model=str(out), device="cpu"))
    env = SyntheticEnv(LEARNABLE.options)
    live, dead = [], []
    for theorem in heldout_theorems(10):
        state = env.start(theorem)
        live.append(state.pp)
        wrong = [t for t in ("norm_num", "simp", "linarith", "omega") if t != RULE[features(state.pp)]]
        dead += [o.pp for o in (env.run_tactic(state, t) for t in wrong) if hasattr(o, "pp")]
    live_scores, dead_scores = critic.score(live), critic.score(dead)
    assert min(live_scores) > max(dead_scores)


def critic_models_loaded_here(actor) -> int:
    """How many critics this process has loaded (run inside an actor by ``__ray_call__``)."""
    import sys

    critic = sys.modules.get("prover.policies.critic")
    return len(critic._LOADED) if critic is not None else 0


def ray_config(config: RunConfig, **distributed) -> RunConfig:
    """``config`` on 2 workers of half a CPU, 2 searches each (fits the session's 2-CPU Ray)."""
    settings = dict(num_workers=2, worker_cpus=0.5, searches_per_worker=2, max_wait_ms=2.0)
    return replace(config, distributed=DistributedConfig(**{**settings, **distributed}))


@pytest.mark.slow
def test_on_ray_the_policy_replica_serves_the_critic_and_searches_match_in_process(ray_local, tiny_critic_dir):
    """The replica holding the policy holds the critic and batches every search's score
    calls; no search worker loads it; the searches are those of an in-process run."""
    import ray

    from prover.run.cluster import RayExecutor

    # 8 expansions: the budget at which this (untrained) critic's ordering proves a theorem
    # that log-prob alone does not, so a search that ignored it would differ
    config = RunConfig(
        env=LEARNABLE,
        limits=SearchLimits(max_expansions=8),
        search=SearchConfig(scorer="value_mixed", critic=str(tiny_critic_dir), value_weight=2.0),
    )
    theorems = [Theorem(f"synthetic_{i:04d}") for i in range(8)]
    with InProcessExecutor(config) as executor:
        expected = {t.name: (r.status.value, r.proof) for t, r in executor.prove(theorems)}
    assert {status for status, _ in expected.values()} == {"proved", "open"}

    with RayExecutor(ray_config(config)) as executor:
        results = {t.name: r for t, r in executor.prove(theorems)}
        served = executor.stats()["policy"]
        loaded_in_workers = ray.get([w.handle.__ray_call__.remote(critic_models_loaded_here) for w in executor.workers])
        loaded_in_replica = ray.get(executor.server.__ray_call__.remote(critic_models_loaded_here))
    assert {name: (r.status.value, r.proof) for name, r in results.items()} == expected
    valued = sum(
        1
        for r in results.values()
        for node, attrs in r.tree.graph.nodes(data=True)
        if node >= 0 and attrs["value"] is not None
    )
    assert served["states_by_method"]["score"] == valued > 0  # every state's value came from the replica
    assert served["requests_by_method"]["propose"] > 0
    assert loaded_in_workers == [0, 0] and loaded_in_replica == 1


@pytest.mark.slow
def test_a_critic_that_cannot_load_stops_the_ray_run_with_one_sentence(ray_local, tmp_path, capsys):
    from prover.cli import main

    missing = tmp_path / "no-critic"
    with pytest.raises(ProverError) as in_process:
        search_theorem(Theorem("synthetic_0000"), FixedPolicy(), run_config(critic=str(missing)))
    with pytest.raises(SystemExit) as exited:  # joins the session's Ray, already started in this process
        main(
            [
                "prove-split",
                "--no-progress",
                "--num-theorems",
                "2",
                "--num-workers",
                "1",
                "--worker-cpus",
                "0.5",
                "--critic",
                str(missing),
                "--out",
                str(tmp_path / "run"),
            ]
        )
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == f"error: {in_process.value}"  # the in-process sentence...
    assert "no such directory; pass --critic PATH" in err and "Traceback" not in err  # ...and no traceback
