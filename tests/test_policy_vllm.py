"""The vLLM policy, driven through a fake engine that answers with vLLM's objects.

Where vLLM imports (``pip install '.[vllm]'``), the policy and the fake engine use vLLM's
own ``SamplingParams``, ``RequestOutput``, ``CompletionOutput`` and ``Logprob``, and
``test_fakes_have_the_fields_of_the_pinned_vllm`` checks the stand-ins below against them.
vLLM is not installed in the project's test environment: its wheels pin a CUDA torch and
weigh gigabytes. It was installed once, in a throwaway environment on this 2-core CPU
machine (vLLM 0.32.0, the top of the range pyproject pins, with a CPU torch 2.13; its
torchvision/torchaudio/torchcodec wheels, built for CUDA torch, had to be removed for
``import vllm.SamplingParams`` to work, which then took 5-9 s), and these tests passed
there against the real classes. Elsewhere the stand-ins keep those classes' field names
and defaults, read from vLLM 0.32.0's ``sampling_params.py``, ``outputs.py`` and
``logprobs.py``. No engine runs on a CPU here, so ``LLM`` itself is always a fake.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import types
from dataclasses import dataclass, field
from typing import Any

import pytest

from search import merge_proposals

from prover.config import BackendSpec
from prover.errors import MissingDependencyError, ProverError
from prover.policies import make_policy
from prover.policies import vllm as vllm_policy
from prover.policies.hf import HFConfig, HFPolicy, load_model
from prover.policies.prompts import PROMPTS
from prover.policies.vllm import MAX_BEAM_WIDTH, NEEDS_VLLM, NoLogprobsError, VLLMConfig, VLLMPolicy, import_vllm

from tests.tiny_llama import STATES, save_tiny_llama


# Stand-ins with the fields (names and defaults) of vLLM 0.32.0's classes that the policy
# sets or reads.
@dataclass
class FakeSamplingParams:
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = None
    stop: str | list[str] | None = None
    stop_token_ids: list[int] | None = None
    max_tokens: int | None = 16
    logprobs: int | None = None
    detokenize: bool = True
    skip_special_tokens: bool = True
    include_stop_str_in_output: bool = False


@dataclass
class FakeLogprob:
    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


@dataclass
class FakeCompletionOutput:
    index: int
    text: str
    token_ids: list[int]
    cumulative_logprob: float | None
    logprobs: list[dict[int, Any]] | None
    routed_experts: Any = None
    finish_reason: str | None = None
    stop_reason: int | str | None = None
    lora_request: Any = None


class FakeRequestOutput:
    def __init__(
        self,
        request_id,
        prompt,
        prompt_token_ids,
        prompt_logprobs,
        outputs,
        finished,
        metrics=None,
        lora_request=None,
        encoder_prompt=None,
        encoder_prompt_token_ids=None,
        num_cached_tokens=None,
        num_cache_creation_tokens=None,
        **kwargs,
    ):
        self.request_id, self.prompt, self.prompt_token_ids = request_id, prompt, prompt_token_ids
        self.prompt_logprobs, self.outputs, self.finished = prompt_logprobs, outputs, finished


try:  # the real classes where vLLM imports; anything failing to import means "not here"
    from vllm import SamplingParams
    from vllm.logprobs import Logprob
    from vllm.outputs import CompletionOutput, RequestOutput

    REAL_VLLM = True
except Exception:  # noqa: BLE001 - an ImportError, or a broken CUDA-only install
    SamplingParams, Logprob = FakeSamplingParams, FakeLogprob
    CompletionOutput, RequestOutput = FakeCompletionOutput, FakeRequestOutput
    REAL_VLLM = False


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    directory = save_tiny_llama(tmp_path_factory.mktemp("tiny-llama-vllm"))
    return load_model(str(directory), "cpu")[1]


def ids_of(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


@dataclass
class FakeLLM:
    """Answers from a script: for each state, continuations (text, log-prob per token).

    ``generate`` with text prompts samples: the first ``n`` continuations, cut at the stop
    strings as vLLM does. With token prompts (one beam-search step: ``max_tokens=1``) it is
    a small language model: the next token of every scripted continuation that the beam's
    generated tokens begin (the end token once one is complete), an unlikely end token,
    then very unlikely filler tokens, ``logprobs`` of them in all. ``max_logprobs`` is
    enforced as vLLM enforces it.
    """

    tokenizer: object
    script: dict[str, list[tuple[str, float]]]
    prompt_ids: dict[str, list[int]] = field(default_factory=dict)  # each state's rendered prompt
    max_logprobs: int = 2 * MAX_BEAM_WIDTH
    logprobs_missing: bool = False
    calls: list = field(default_factory=list)

    def get_tokenizer(self):
        return self.tokenizer

    def generate(self, prompts, params, use_tqdm=True):
        self.calls.append((list(prompts), params))
        if (params.logprobs or 0) > self.max_logprobs:
            raise ValueError(
                f"Requested sample logprobs of {params.logprobs}, which is greater than max allowed: "
                f"{self.max_logprobs}"
            )
        if prompts and isinstance(prompts[0], dict):
            return [self._step(prompt["prompt_token_ids"], params) for prompt in prompts]
        return [self._sample(prompt, params) for prompt in prompts]

    def generated(self, token_ids: list[int]) -> tuple[str, list[int]]:
        """(state, generated tokens) of a beam-search request."""
        for state, prompt_ids in self.prompt_ids.items():
            if token_ids[: len(prompt_ids)] == prompt_ids:
                return state, token_ids[len(prompt_ids) :]
        raise AssertionError("a request that extends no rendered prompt")

    def _sample(self, prompt: str, params) -> Any:
        state = next(state for state in self.script if state in prompt)
        outputs = []
        for index, (text, per_token) in enumerate(self.script[state][: params.n]):
            ids = ids_of(self.tokenizer, text)
            for stop in params.stop or []:  # like vLLM: stop at the stop string, leave it out of the text
                if stop in text:
                    ids, text = ids[: through_stop(self.tokenizer, text, stop)], text.split(stop)[0]
            logprobs = None if self.logprobs_missing else [{token: Logprob(per_token)} for token in ids]
            cumulative = None if self.logprobs_missing else per_token * len(ids)
            outputs.append(CompletionOutput(index, text, ids, cumulative, logprobs))
        return RequestOutput(str(len(self.calls)), prompt, None, None, outputs, True)

    def next_token_logprobs(self, state: str, generated: list[int], count: int) -> dict[int, float]:
        """The model: ``count`` next tokens after ``generated`` with their log-probs."""
        eos = self.tokenizer.eos_token_id
        choices: dict[int, float] = {}
        for continuation, per_token in self.script[state]:
            ids = ids_of(self.tokenizer, continuation)
            if ids[: len(generated)] == generated:
                token, logprob = (ids[len(generated)], per_token) if len(ids) > len(generated) else (eos, -0.05)
                choices[token] = max(choices.get(token, -math.inf), logprob)
        choices.setdefault(eos, -3.0)
        filler = (t for t in range(10, 500) if t not in choices)
        while len(choices) < count:
            choices[next(filler)] = -8.0 - 0.01 * len(choices)
        return dict(sorted(choices.items(), key=lambda item: -item[1])[:count])

    def logprob_of(self, state: str, text: str) -> float:
        """The model's log-prob of generating ``text``'s tokens."""
        ids = ids_of(self.tokenizer, text)
        return sum(self.next_token_logprobs(state, ids[:n], len(ids) + 8)[ids[n]] for n in range(len(ids)))

    def _step(self, token_ids: list[int], params) -> Any:
        assert params.max_tokens == 1 and params.temperature == 0.0 and params.n == 1
        state, generated = self.generated(token_ids)
        best = list(self.next_token_logprobs(state, generated, params.logprobs).items())
        logprobs = None if self.logprobs_missing else [{t: Logprob(lp, rank=r + 1) for r, (t, lp) in enumerate(best)}]
        completion = CompletionOutput(0, "", [best[0][0]], None, logprobs)
        return RequestOutput(str(len(self.calls)), None, token_ids, None, [completion], True)


def through_stop(tokenizer, text: str, stop: str = "---") -> int:
    """How many of ``text``'s tokens it takes to complete ``stop``."""
    ids = ids_of(tokenizer, text)
    return next(n for n in range(1, len(ids) + 1) if stop in tokenizer.decode(ids[:n]))


SCRIPT = {
    STATES[0]: [
        ("\nsimp\n---\nlinarith", -0.5),
        ("\nnorm_num\n---", -0.2),
        ("\nsimp\n---", -0.1),
        ("\n  \n---", -0.01),
    ],
    STATES[1]: [("\nnlinarith [sq_nonneg (a - b)]\n---", -0.3), ("\nlinarith", -0.4)],
}

FAKE_VLLM = types.SimpleNamespace(LLM=None, SamplingParams=SamplingParams)


def make(tokenizer, script=SCRIPT, **settings) -> tuple[VLLMPolicy, FakeLLM]:
    llm = FakeLLM(tokenizer, script)
    policy = VLLMPolicy(VLLMConfig(**settings), llm=llm, vllm=FAKE_VLLM)
    llm.prompt_ids = {state: tokenizer(policy.render(state))["input_ids"] for state in script}
    return policy, llm


# ---- sampling ----------------------------------------------------------------------------------


def test_sampling_sends_one_batched_request_with_vllm_parameters(tokenizer):
    policy, llm = make(tokenizer, temperature=0.7, top_p=0.9, max_new_tokens=64)
    proposals = policy.propose([STATES[0], STATES[1]], k=4)
    ((prompts, params),) = llm.calls
    assert len(prompts) == 2 and all(isinstance(p, str) for p in prompts)
    assert (params.n, params.temperature, params.top_p, params.max_tokens, params.logprobs) == (4, 0.7, 0.9, 64, 0)
    assert list(params.stop) == ["---"] and not params.stop_token_ids
    # Every completion, cut at the stop and stripped, best first: the blank one and simp's
    # two copies too. The engine keeps simp's best copy and drops the blank one.
    assert sorted(p.tactic for p in proposals[0]) == ["", "norm_num", "simp", "simp"]
    merged = {p.tactic: p.logprob for p in merge_proposals(proposals[0], k=4)}
    assert set(merged) == {"simp", "norm_num"}
    assert merged["simp"] == pytest.approx(-0.1 * through_stop(tokenizer, "\nsimp\n---"))
    assert {p.tactic for p in proposals[1]} == {"nlinarith [sq_nonneg (a - b)]", "linarith"}
    for per_state in proposals:
        logprobs = [p.logprob for p in per_state]
        assert logprobs == sorted(logprobs, reverse=True) and all(math.isfinite(x) and x <= 0 for x in logprobs)


def test_length_normalised_scores_divide_by_the_generated_token_count(tokenizer):
    policy, _ = make(tokenizer, length_normalise=True)
    (proposals,) = policy.propose([STATES[1]], k=2)
    assert sorted(p.logprob for p in proposals) == pytest.approx([-0.4, -0.3])


def test_temperature_zero_asks_for_one_greedy_completion(tokenizer):
    policy, llm = make(tokenizer, temperature=0.0)
    (proposals,) = policy.propose([STATES[0]], k=4)
    assert llm.calls[0][1].n == 1 and llm.calls[0][1].temperature == 0.0
    assert [p.tactic for p in proposals] == ["simp"]


def test_no_logprobs_from_vllm_is_one_clear_error_not_zero_scores(tokenizer):
    """Some vLLM V1 releases answered ``logprobs=0`` with ``cumulative_logprob=None``: every
    candidate then scored 0.0 and the search lost the model's guidance without a word."""
    policy, llm = make(tokenizer)
    llm.logprobs_missing = True
    with pytest.raises(NoLogprobsError, match="no log-probs") as caught:
        policy.propose([STATES[0]], k=2)
    assert isinstance(caught.value, ProverError)  # ends the run with one sentence
    beam, llm = make(tokenizer, decoding="beam")
    llm.logprobs_missing = True
    with pytest.raises(NoLogprobsError, match="no log-probs for a beam search step"):
        beam.propose([STATES[0]], k=2)


def test_special_token_stop_is_sent_as_a_stop_token_id(tmp_path_factory):
    """InternLM's ``<|im_end|>`` is one special token: vLLM matches stop strings in text
    decoded without special tokens, so it must stop on the token id."""
    directory = save_tiny_llama(tmp_path_factory.mktemp("tiny-llama-im-end"))
    tokenizer = load_model(str(directory), "cpu")[1]
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_end|>"]})
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    script = {STATES[0]: [("simp<|im_end|>", -0.25)]}
    policy, llm = make(tokenizer, script, prompt="internlm_stepprover")
    (proposals,) = policy.propose([STATES[0]], k=1)
    params = llm.calls[0][1]
    assert not params.stop and list(params.stop_token_ids) == [im_end]
    assert [p.tactic for p in proposals] == ["simp"]
    assert proposals[0].logprob == pytest.approx(-0.25 * len(ids_of(tokenizer, "simp<|im_end|>")))


# ---- beam search -------------------------------------------------------------------------------


def test_beam_search_of_32_beams_ends_each_beam_at_the_stop_string(tokenizer):
    """k = 32, Llemma's setting: every beam that completes ``---`` is finished there and
    scored through it; none is grown past it (vLLM's LLM.beam_search would run it on to
    the token limit); 2 x 32 log-probs per step are asked for, which the LLM allows."""
    policy, llm = make(tokenizer, decoding="beam", max_new_tokens=24)
    proposals = policy.propose([STATES[0], STATES[1]], k=32)
    assert [len(per_state) for per_state in proposals] == [32, 32]
    steps = [params for _, params in llm.calls]
    assert steps and all(p.logprobs == 64 and p.max_tokens == 1 and p.n == 1 for p in steps)
    for prompts, _ in llm.calls:  # no request grew a beam whose tactic had ended
        for prompt in prompts:
            _, generated = llm.generated(prompt["prompt_token_ids"])
            assert "---" not in tokenizer.decode(generated)
    scores = {}
    for p in proposals[0]:
        scores[p.tactic] = max(scores.get(p.tactic, -math.inf), p.logprob)
    # "\nsimp\n---\nlinarith" is cut and scored through its "---" only (the tokens of
    # "\nsimp\n---", which the model finds likelier by way of the script's other "simp").
    assert scores["simp"] == pytest.approx(llm.logprob_of(STATES[0], "\nsimp\n---"))
    assert scores["norm_num"] == pytest.approx(llm.logprob_of(STATES[0], "\nnorm_num\n---"))
    assert [p.tactic for p in proposals[0][:3]] == ["", "simp", "norm_num"]  # the blank tactic is the engine's to drop
    nlinarith = "nlinarith [sq_nonneg (a - b)]"
    second = {p.tactic: p.logprob for p in reversed(proposals[1])}
    assert second[nlinarith] == pytest.approx(llm.logprob_of(STATES[1], f"\n{nlinarith}\n---"))
    # A beam without a stop string ends at the end token, whose log-prob (-0.05) counts.
    assert second["linarith"] == pytest.approx(llm.logprob_of(STATES[1], "\nlinarith") - 0.05)
    for per_state in proposals:
        logprobs = [p.logprob for p in per_state]
        assert logprobs == sorted(logprobs, reverse=True) and all(math.isfinite(x) and x <= 0 for x in logprobs)


def test_beam_scores_are_generated_log_probs_and_normalise_by_generated_tokens(tokenizer):
    policy, llm = make(tokenizer, decoding="beam", max_new_tokens=24, length_normalise=True)
    (proposals,) = policy.propose([STATES[0]], k=4)
    best = {p.tactic: p.logprob for p in reversed(proposals)}
    for tactic in ("simp", "norm_num"):  # the mean per generated token: the prompt is not counted
        text = f"\n{tactic}\n---"
        assert best[tactic] == pytest.approx(llm.logprob_of(STATES[0], text) / through_stop(tokenizer, text))


def test_beam_search_stops_once_k_beams_have_finished_ahead_of_the_rest(tokenizer):
    policy, llm = make(tokenizer, decoding="beam", max_new_tokens=200)
    policy.propose([STATES[0]], k=2)
    longest = through_stop(tokenizer, "\nnorm_num\n---")
    assert len(llm.calls) <= longest + 1, "finished beams end the search long before the token limit"


def test_more_beams_than_the_engine_was_built_for_is_a_clear_error(tokenizer):
    policy, _ = make(tokenizer, decoding="beam")
    with pytest.raises(ProverError, match=f"at most {MAX_BEAM_WIDTH} beams per state, not 65"):
        policy.propose([STATES[0]], k=65)


def test_llm_is_built_with_the_vllm_settings_and_room_for_64_beams(tokenizer):
    built = {}

    class RecordingLLM:
        def __init__(self, **kwargs):
            built.update(kwargs)

        def get_tokenizer(self):
            return tokenizer

    config = VLLMConfig(
        model="m",
        tensor_parallel_size=2,
        gpu_memory_utilization=0.8,
        dtype="float16",
        max_model_len=4096,
        trust_remote_code=True,
    )
    VLLMPolicy(config, vllm=types.SimpleNamespace(LLM=RecordingLLM, SamplingParams=SamplingParams))
    assert built == dict(
        model="m",
        dtype="float16",
        seed=0,
        max_model_len=4096,
        tensor_parallel_size=2,
        gpu_memory_utilization=0.8,
        trust_remote_code=True,
        max_logprobs=2 * MAX_BEAM_WIDTH,
    )
    VLLMPolicy(
        VLLMConfig(model="m", max_prompt_tokens=1000, max_new_tokens=256),
        vllm=types.SimpleNamespace(LLM=RecordingLLM, SamplingParams=SamplingParams),
    )
    assert built["max_model_len"] == 1256 and built["dtype"] == "bfloat16"


def test_vllm_settings_are_flags_of_the_vllm_policy():
    from prover.config import RunConfig, apply_flags

    config = apply_flags(
        RunConfig(policy=BackendSpec.default("policy", "vllm")),
        {"--tensor-parallel-size": 4, "--gpu-memory-utilization": 0.7, "--dtype": "float16", "--max-model-len": 8192},
    )
    options = config.policy.options
    assert (options.tensor_parallel_size, options.gpu_memory_utilization, options.dtype, options.max_model_len) == (
        4,
        0.7,
        "float16",
        8192,
    )


# ---- prompts and loading ------------------------------------------------------------------------


def test_vllm_renders_the_same_prompts_as_the_hf_policy(tokenizer, tmp_path_factory):
    model, _ = load_model(str(save_tiny_llama(tmp_path_factory.mktemp("tiny-llama-vllm"))), "cpu")
    long_state = "\n".join(f"h{i} : x{i} = {i}" for i in range(100)) + "\n⊢ x1 = 1"
    for prompt in PROMPTS:
        settings = dict(prompt=prompt, max_prompt_tokens=320)
        hf_policy = HFPolicy(model, tokenizer, HFConfig(**settings))
        vllm_policy_, _ = make(tokenizer, **settings)
        for state in (STATES[2], long_state):
            assert vllm_policy_.render(state) == hf_policy.render(state)


def test_missing_vllm_is_one_clear_sentence(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` raise ImportError
    with pytest.raises(MissingDependencyError) as caught:
        import_vllm()
    assert str(caught.value) == "the vllm backend needs vLLM: pip install '.[vllm]' (on a machine with a CUDA GPU)"
    assert str(caught.value) == NEEDS_VLLM
    with pytest.raises(ProverError, match="needs vLLM"):
        make_policy(BackendSpec.default("policy", "vllm"))


@pytest.mark.skipif(not REAL_VLLM, reason="vLLM does not import here (pip install '.[vllm]')")
def test_fakes_have_the_fields_of_the_pinned_vllm():
    import msgspec
    import vllm

    declared = {f.name: f.default for f in msgspec.structs.fields(SamplingParams)}
    for f in dataclasses.fields(FakeSamplingParams):
        assert declared[f.name] == f.default, f"SamplingParams.{f.name}"
    completion_fields = {f.name for f in dataclasses.fields(CompletionOutput)}
    assert {f.name for f in dataclasses.fields(FakeCompletionOutput)} <= completion_fields
    assert [f.name for f in dataclasses.fields(FakeLogprob)] == [f.name for f in dataclasses.fields(Logprob)]
    assert vllm_policy.import_vllm().SamplingParams is vllm.SamplingParams


@pytest.mark.gpu
def test_real_vllm_proposes_for_a_minif2f_state_on_the_gpu():
    pytest.importorskip("vllm")
    model = os.environ.get("PROVER_GPU_MODEL", "EleutherAI/llemma_7b")
    policy = make_policy(BackendSpec("policy", "vllm", VLLMConfig(model=model, max_new_tokens=64)))
    state = "b h v : ℝ\nh₀ : 0 < b ∧ 0 < h ∧ 0 < v\nh₁ : v = 1 / 3 * (b * h)\nh₂ : b = 30\nh₃ : h = 13 / 2\n⊢ v = 65"
    for decoding in ("sampling", "beam"):
        policy.config = VLLMConfig(model=model, max_new_tokens=64, decoding=decoding)
        (proposals,) = policy.propose([state], k=8)
        assert proposals and all(math.isfinite(p.logprob) and p.logprob <= 0 for p in proposals)
