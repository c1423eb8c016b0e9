"""The vLLM policy, driven through a fake engine that mimics vLLM's objects (no vLLM here)."""

from __future__ import annotations

import math
import os
import sys
import types
from dataclasses import dataclass, field

import pytest

from search import merge_proposals

from prover.config import BackendSpec
from prover.errors import MissingDependencyError, ProverError
from prover.policies import make_policy
from prover.policies.hf import HFConfig, HFPolicy, load_model
from prover.policies.vllm import NEEDS_VLLM, VLLMConfig, VLLMPolicy, import_vllm
from tests.tiny_llama import STATES, session_tiny_llama


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(model, tokenizer) of the session's tiny Llama, loaded as a user's model would be."""
    return load_model(str(session_tiny_llama(tmp_path_factory)), "cpu")


@pytest.fixture(scope="module")
def tokenizer(tiny):
    return tiny[1]


# Stand-ins with the fields of vllm.SamplingParams, vllm.sampling_params.BeamSearchParams,
# vllm.outputs.RequestOutput / CompletionOutput, vllm.beam_search.BeamSearchOutput /
# BeamSearchSequence and vllm.logprobs.Logprob that the policy reads.
@dataclass
class SamplingParams:
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 16
    logprobs: int | None = None
    stop: list[str] | None = None


@dataclass
class BeamSearchParams:
    beam_width: int
    max_tokens: int
    length_penalty: float = 1.0


@dataclass
class Logprob:
    logprob: float


@dataclass
class CompletionOutput:
    text: str
    token_ids: list[int]
    cumulative_logprob: float | None
    logprobs: list | None = None


@dataclass
class BeamSearchSequence:
    tokens: list[int]
    logprobs: list[dict[int, Logprob]]
    cum_logprob: float
    text: str | None = None


@dataclass
class FakeLLM:
    """Answers each prompt from a script: the continuations (text, per-token log-prob)."""

    tokenizer: object
    script: dict[str, list[tuple[str, float]]]
    calls: list = field(default_factory=list)

    def get_tokenizer(self):
        return self.tokenizer

    def _state(self, prompt: str) -> str:
        return next(state for state in self.script if state in prompt)

    def generate(self, prompts, params, use_tqdm=True):
        self.calls.append(("generate", list(prompts), params))
        requests = []
        for prompt in prompts:
            outputs = []
            for text, per_token in self.script[self._state(prompt)][: params.n]:
                # Like vLLM: stop at the first stop string, leave it out of the text.
                for stop in params.stop or []:
                    text = text.split(stop)[0]
                ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
                outputs.append(CompletionOutput(text, ids, per_token * len(ids)))
            requests.append(types.SimpleNamespace(prompt=prompt, outputs=outputs))
        return requests

    def beam_search(self, prompts, params):
        self.calls.append(("beam_search", list(prompts), params))
        results = []
        for prompt in prompts:
            prompt_ids = self.tokenizer(prompt["prompt"])["input_ids"]
            sequences = []
            for text, per_token in self.script[self._state(prompt["prompt"])][: params.beam_width]:
                ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
                sequences.append(BeamSearchSequence(
                    tokens=prompt_ids + ids,
                    logprobs=[{token: Logprob(per_token)} for token in ids],
                    cum_logprob=per_token * len(ids),  # the whole beam, past the stop
                    text=self.tokenizer.decode(prompt_ids + ids, skip_special_tokens=True),
                ))
            results.append(types.SimpleNamespace(sequences=sequences))
        return results


FAKE_VLLM = types.SimpleNamespace(LLM=None, SamplingParams=SamplingParams, BeamSearchParams=BeamSearchParams)

SCRIPT = {
    STATES[0]: [("\nsimp\n---\nlinarith", -0.5), ("\nnorm_num\n---", -0.2), ("\nsimp\n---", -0.1), ("\n  \n---", -0.01)],
    STATES[1]: [("\nnlinarith [sq_nonneg (a - b)]\n---", -0.3), ("\nlinarith", -0.4)],
}


def make(tokenizer, **settings) -> tuple[VLLMPolicy, FakeLLM]:
    llm = FakeLLM(tokenizer, SCRIPT)
    return VLLMPolicy(VLLMConfig(**settings), llm=llm, vllm=FAKE_VLLM), llm


def test_sampling_sends_one_batched_request_with_vllm_parameters(tokenizer):
    policy, llm = make(tokenizer, temperature=0.7, top_p=0.9, max_new_tokens=64)
    proposals = policy.propose([STATES[0], STATES[1]], k=4)
    ((kind, prompts, params),) = llm.calls
    assert kind == "generate" and len(prompts) == 2
    assert params == SamplingParams(n=4, temperature=0.7, top_p=0.9, max_tokens=64, logprobs=0, stop=["---"])
    # Every completion, cut at the stop and stripped, best first: the blank one and simp's
    # two copies too. The engine keeps simp's best copy and drops the blank one.
    assert sorted(p.tactic for p in proposals[0]) == ["", "norm_num", "simp", "simp"]
    simp_tokens = len(tokenizer("\nsimp\n", add_special_tokens=False)["input_ids"])
    merged = {p.tactic: p.logprob for p in merge_proposals(proposals[0], k=4)}
    assert set(merged) == {"simp", "norm_num"}
    assert merged["simp"] == pytest.approx(-0.1 * simp_tokens)
    assert {p.tactic for p in proposals[1]} == {"nlinarith [sq_nonneg (a - b)]", "linarith"}
    for per_state in proposals:
        logprobs = [p.logprob for p in per_state]
        assert logprobs == sorted(logprobs, reverse=True) and all(math.isfinite(x) and x <= 0 for x in logprobs)


def test_length_normalised_scores_divide_by_the_token_count(tokenizer):
    policy, _ = make(tokenizer, length_normalise=True)
    (proposals,) = policy.propose([STATES[1]], k=2)
    assert sorted(p.logprob for p in proposals) == pytest.approx([-0.4, -0.3])


def test_temperature_zero_asks_for_one_greedy_completion(tokenizer):
    policy, llm = make(tokenizer, temperature=0.0)
    (proposals,) = policy.propose([STATES[0]], k=4)
    assert llm.calls[0][2].n == 1 and llm.calls[0][2].temperature == 0.0
    assert [p.tactic for p in proposals] == ["simp"]


def test_beam_search_uses_llm_beam_search_and_scores_through_the_stop_only(tokenizer):
    policy, llm = make(tokenizer, decoding="beam", max_new_tokens=32)
    (proposals,) = policy.propose([STATES[0]], k=3)
    ((kind, prompts, params),) = llm.calls
    assert kind == "beam_search" and prompts == [{"prompt": policy.render(STATES[0])}]
    assert params == BeamSearchParams(beam_width=3, max_tokens=32, length_penalty=0.0)
    assert sorted(p.tactic for p in proposals) == ["norm_num", "simp", "simp"]
    # Beam search knows no stop strings: "\nsimp\n---\nlinarith" is cut at "---" and only
    # the tokens through "---" are scored (row 0, -0.5 each).
    through_stop = len(tokenizer("\nsimp\n---", add_special_tokens=False)["input_ids"])
    assert sorted(p.logprob for p in proposals if p.tactic == "simp") == pytest.approx(
        [-0.5 * through_stop, -0.1 * through_stop]
    )


def test_vllm_renders_the_same_prompts_as_the_hf_policy(tiny):
    model, tokenizer = tiny
    long_state = "\n".join(f"h{i} : x{i} = {i}" for i in range(100)) + "\n⊢ x1 = 1"
    for prompt in ("llemma", "goal_proofstep"):
        settings = dict(prompt=prompt, max_prompt_tokens=320)
        hf_policy = HFPolicy(model, tokenizer, HFConfig(**settings))
        vllm_policy, _ = make(tokenizer, **settings)
        for state in (STATES[2], long_state):
            assert vllm_policy.render(state) == hf_policy.render(state)


def test_missing_vllm_is_one_clear_sentence(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` raise ImportError
    with pytest.raises(MissingDependencyError) as caught:
        import_vllm()
    assert str(caught.value) == "the vllm backend needs vLLM: pip install '.[vllm]' (on a machine with a CUDA GPU)"
    assert str(caught.value) == NEEDS_VLLM
    with pytest.raises(ProverError, match="needs vLLM"):
        make_policy(BackendSpec.default("policy", "vllm"))


@pytest.mark.gpu
def test_real_vllm_proposes_for_a_minif2f_state_on_the_gpu():
    pytest.importorskip("vllm")
    model = os.environ.get("PROVER_GPU_MODEL", "EleutherAI/llemma_7b")
    policy = make_policy(BackendSpec("policy", "vllm", VLLMConfig(model=model, max_new_tokens=64)))
    state = "b h v : ℝ\nh₀ : 0 < b ∧ 0 < h ∧ 0 < v\nh₁ : v = 1 / 3 * (b * h)\nh₂ : b = 30\nh₃ : h = 13 / 2\n⊢ v = 65"
    (proposals,) = policy.propose([state], k=8)
    assert proposals and all(math.isfinite(p.logprob) and p.logprob <= 0 for p in proposals)
