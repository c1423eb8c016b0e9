"""Decoding as each source did it: how finished beams are ranked, which candidates may
finish (``prover.policies.beams``), the weights' dtype, and each preset pinned to its source."""

from __future__ import annotations

import pytest
import torch

from prover.policies.beams import Beam, BeamRule, BeamState, advance, beam_score, final_beams
from prover.policies.hf import HFConfig, HFPolicy, load_model
from prover.policies.prompts import PROMPTS
from prover.presets import PRESETS, get_preset, resolved_settings

from tests.tiny_llama import STATES, session_tiny_llama

EOS = 0


def beam(tokens, logprob):
    return Beam(list(tokens), [logprob / max(len(tokens), 1)] * len(tokens), logprob)


def test_the_three_rankings_score_a_finished_beam_as_their_sources_did():
    short, long = beam([5, EOS], -2.0), beam([5, 6, 7, 8, 9, EOS], -2.2)
    prompt = 10
    assert beam_score(BeamRule("sum"), short, prompt, EOS) == -2.0
    assert beam_score(BeamRule("mean"), long, prompt, EOS) == pytest.approx(-2.2 / 6)
    # vLLM 0.1.7: cumulative log-prob / (prompt + generated - 1 for a final EOS)
    assert beam_score(BeamRule("vllm_0_1_7"), short, prompt, EOS) == pytest.approx(-2.0 / 11)
    assert beam_score(BeamRule("vllm_0_1_7"), long, prompt, EOS) == pytest.approx(-2.2 / 15)
    assert beam_score(BeamRule("vllm_0_1_7"), beam([5, 6], -1.0), prompt, EOS) == pytest.approx(-1.0 / 12)
    # The sum prefers the short beam, the length-penalised scores the long one.
    order = lambda rule: sorted([short, long], key=lambda b: -beam_score(rule, b, prompt, EOS))  # noqa: E731
    assert order(BeamRule("sum")) == [short, long]
    assert order(BeamRule("mean")) == order(BeamRule("vllm_0_1_7")) == [long, short]


def step_candidates(search, pairs):
    """(token, log-prob) continuations of the one running beam, as ``advance`` takes them."""
    (parent,) = search.running
    return [(parent.logprob + lp, parent, token, lp) for token, lp in pairs]


def test_only_transformers_limits_finishing_to_the_first_k_candidates():
    k = 2
    # Ranked by summed log-prob: two running tokens, then an EOS at rank 2 (outside the first k).
    pairs = [(11, -0.1), (12, -0.2), (EOS, -0.3), (13, -0.4)]
    ends = lambda b: b.tokens[-1] == EOS  # noqa: E731
    hf, vllm = BeamState(4), BeamState(4)
    advance(hf, step_candidates(hf, pairs), k, BeamRule("sum", "top_k"), ends, EOS)
    advance(vllm, step_candidates(vllm, pairs), k, BeamRule("sum", "any"), ends, EOS)
    assert hf.finished == [] and [b.tokens for b in hf.running] == [[11], [12]]
    assert [b.tokens for _, b in vllm.finished] == [[EOS]]  # any of the 2k may finish
    assert [b.tokens for b in vllm.running] == [[11], [12]]  # the k best unfinished run on either way


def test_at_the_token_limit_vllm_pools_running_beams_with_the_finished_ones():
    k = 2
    search = BeamState(4, running=[Beam([1], [-0.1], -0.1)], finished=[(-5.0, beam([2, EOS], -5.0))])
    pairs = [(11, -0.1), (12, -0.2), (13, -9.0), (14, -9.5)]
    advance(search, step_candidates(search, pairs), k, BeamRule("sum", "any"), lambda b: False, EOS, last_step=True)
    assert search.running == []
    assert [b.tokens for _, b in search.finished] == [[1, 11], [1, 12]]  # the finished one was displaced
    assert [b.tokens for b in final_beams(search, k, BeamRule("sum", "any"), EOS)] == [[1, 11], [1, 12]]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return load_model(str(session_tiny_llama(tmp_path_factory)), "cpu")


@pytest.mark.parametrize("prompt", ["goal_proofstep", "llemma"])
def test_the_step_wise_beam_search_under_transformers_rules_gives_transformers_beams(tiny, prompt):
    """The search that runs vLLM 0.1.7's rules on transformers is checked against
    transformers' own beam search where the rules coincide: same beams, same scores."""
    model, tokenizer = tiny
    policy = HFPolicy(model, tokenizer, HFConfig(prompt=prompt, decoding="beam", max_new_tokens=10))
    states = list(STATES[:3])
    native = policy.propose(states, 4)
    step_wise = policy._stepwise_beam_search([policy.render(s) for s in states], 4)
    for ours, theirs in zip(step_wise, native):
        assert [p.tactic for p in ours] == [p.tactic for p in theirs]
        assert [p.logprob for p in ours] == pytest.approx([p.logprob for p in theirs], abs=1e-4)


def test_vllm_0_1_7_rules_run_on_transformers_and_rank_by_the_penalised_score(tiny, monkeypatch):
    model, tokenizer = tiny
    config = HFConfig(
        prompt="goal_proofstep", decoding="beam", max_new_tokens=10, beam_ranking="vllm_0_1_7", beam_finish="any"
    )
    policy = HFPolicy(model, tokenizer, config)
    calls = []
    monkeypatch.setattr(model, "generate", lambda **kw: calls.append(kw))
    proposals = policy.propose(list(STATES[:2]), 4)
    assert calls == []  # not transformers' generate: its rules differ
    assert [len(p) for p in proposals] == [4, 4]
    assert all(p.logprob <= 0 for per_state in proposals for p in per_state)


def test_the_hf_policy_loads_the_weights_in_the_dtype_asked_for_on_a_gpu_and_float32_on_the_cpu(
    monkeypatch, tmp_path_factory
):
    from prover.policies import hf

    directory = str(session_tiny_llama(tmp_path_factory))
    model, _ = load_model(directory, "cpu", dtype="float16")
    assert model.dtype == torch.float32  # the CPU: half-precision products are slow or missing there
    seen = {}
    monkeypatch.setattr(hf, "load_model", lambda *a, **kw: seen.update(kw) or load_model(directory, "cpu"))
    HFPolicy.from_config(HFConfig(model=directory, dtype="float16", device="cpu"))
    assert seen["dtype"] == "float16"


# What each source's code does (see each preset's ``source``), written out here so that a
# change to a preset fails this test: prompt format, decoding, beams ranked / finished,
# dtype, tactics per expansion, new tokens, tactic score, expansions, seconds, searches per theorem (N).
SOURCES = {
    "llemma-f2f": ("llemma", "beam", "vllm_0_1_7", "any", "bfloat16", 32, 256, True, 100, 600.0, 1),
    "llemma-34b-f2f": ("llemma", "beam", "vllm_0_1_7", "any", "bfloat16", 32, 256, True, 100, 600.0, 1),
    "llmstep-pythia-f2f": ("goal_proofstep", "beam", "vllm_0_1_7", "any", "float16", 32, 256, True, 100, 600.0, 1),
    "internlm2.5-stepprover": ("internlm_stepprover", "beam", "sum", "any", "float16", 32, 256, True, 100, 1200.0, 256),
    "bfs-prover-v1": ("bfs_prover", "sampling", None, None, "bfloat16", 2, 256, False, 600, 600.0, 2048),
    "bfs-prover-v2-7b": ("bfs_prover", "sampling", None, None, "bfloat16", 2, 256, False, 600, 600.0, 2048),
    "bfs-prover-v2-32b": ("bfs_prover", "sampling", None, None, "bfloat16", 2, 256, False, 600, 600.0, 2048),
}


@pytest.mark.parametrize("name", sorted(PRESETS))
@pytest.mark.parametrize("policy", ["hf", "vllm"])
def test_each_preset_decodes_as_its_source(name, policy):
    resolved = resolved_settings(name, policy)
    prompt, decoding, ranking, finish, dtype, k, new_tokens, mean_score, expansions, seconds, n = SOURCES[name]
    assert (resolved["prompt"], resolved["decoding"], resolved["dtype"]) == (prompt, decoding, dtype)
    assert (resolved.get("beam_ranking"), resolved.get("beam_finish")) == (ranking, finish)
    assert (resolved["tactics_per_node"], resolved["max_new_tokens"]) == (k, new_tokens)
    assert resolved["tactic_score"] == ("mean_logprob_per_token" if mean_score else "sum_logprob")
    assert (resolved["max_expansions"], resolved["time_limit_s"]) == (expansions, seconds)
    assert resolved["attempts"] == n
    cost = resolved["full_reproduction"]  # what `prover presets NAME` says a reproduction costs
    assert cost["searches"] == 244 * n and cost["max_expansions"] == 244 * n * expansions
    assert cost["max_tactic_candidates"] == 244 * n * expansions * k and f"--preset {name}" in cost["command"]


def test_each_presets_prompt_is_its_sources_bytes():
    state = "x : ℕ\nh : {x} = %d\n⊢ x + 0 = x"
    assert PROMPTS[get_preset("llmstep-pythia-f2f").prompt].render(state) == "[GOAL]" + state + "[PROOFSTEP]"
    assert PROMPTS[get_preset("bfs-prover-v1").prompt].render(state) == state + ":::"
    # Llemma's bytes: tests/test_policy_hf.py (LLEMMA_GOLDEN); InternLM's: tests/test_proof_context.py.


def test_the_hf_policy_calls_no_transformers_api_marked_for_removal(tiny):
    """The shared-prefill sampling path and the step-wise beam search hand the KV cache over
    under the name this transformers takes (``cache`` since 5.x, ``past_key_values`` before):
    no deprecation warning, so nothing breaks when the old name is removed (6.0)."""
    import warnings

    model, tokenizer = tiny
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        HFPolicy(model, tokenizer, HFConfig(prompt="goal_proofstep", max_new_tokens=4)).propose(list(STATES[:2]), 3)
        HFPolicy(
            model,
            tokenizer,
            HFConfig(
                prompt="goal_proofstep", decoding="beam", max_new_tokens=4, beam_ranking="vllm_0_1_7", beam_finish="any"
            ),
        ).propose(list(STATES[:2]), 3)
    removals = [str(w.message) for w in caught if "removed" in str(w.message) or "deprecated" in str(w.message)]
    assert removals == []
