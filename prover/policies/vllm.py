"""A tactic policy on vLLM: the interface and prompts of ``prover.policies.hf``, faster on a GPU.

Sampling uses ``LLM.generate(prompts, SamplingParams(n=k, temperature, top_p, max_tokens,
logprobs=0, stop=[...]))``: all states in one call, ``k`` completions each. ``logprobs=0``
asks for each sampled token's own log-prob (and no alternatives); a candidate's score sums
them over the tokens that produced its tactic (through the stop string or the end token,
after any echo of the prompt), and ``length_normalise`` divides by that many generated
tokens. A stop string that the tokenizer holds as one special token (InternLM's
``<|im_end|>``) is passed as ``stop_token_ids``, since vLLM matches stop strings in text
decoded without special tokens.

Beam search is our own, on ``generate``, one token per step as vLLM's ``LLM.beam_search``
does (each running beam asks for its ``2 x k`` most likely next tokens), because
``LLM.beam_search`` ends a beam only at the end-of-sequence token and knows no stop
strings: with the llemma prompt its beams run past ``---`` to the token limit and are
ranked by text after the tactic. Here a beam whose continuation completes a stop string
(or reaches an end token) is finished there, and its score counts the tokens up to and
including the stop only. Which candidates may finish and how finished beams are ranked
follow ``--beam-finish`` and ``--beam-ranking`` (``prover.policies.beams``: transformers'
rules, or vLLM 0.1.7's that Llemma's and llmstep's scripts ran). A proposal's score is
the log-prob of its generated tokens (``length_normalise``: their mean), whatever ranked
the beams. Each step re-sends a beam's
prompt and tokens; vLLM's prefix cache makes that cheap. ``LLM`` is built with
``max_logprobs = 2 x MAX_BEAM_WIDTH`` so that up to 64 beams work (vLLM's default, 20,
rejects more than 10).

A vLLM that returns no log-probs (some V1 releases gave ``cumulative_logprob=None`` for
``logprobs=0``) makes the policy raise ``NoLogprobsError`` instead of scoring every
candidate 0, which would leave the search without model guidance.

vLLM is imported here only, and only when this policy is built:

    policy = VLLMPolicy(VLLMConfig(model="EleutherAI/llemma_7b"))
    policy.propose(["x : ℕ\\n⊢ x + 0 = x"], k=8)

Tests pass a fake ``llm`` (and fake ``vllm`` classes, or the real ones where vLLM imports)
that answer with vLLM's output objects.
"""

from __future__ import annotations

import types
from dataclasses import dataclass

from search import Proposal

from prover.errors import MissingDependencyError, ProverError
from prover.policies.beams import Beam, BeamState, advance, final_beams
from prover.policies.prompts import (
    ModelPolicyConfig,
    PromptedPolicy,
    PromptFormat,
    cut_continuation,
    end_token_ids,
    get_prompt,
    special_stop_ids,
    to_proposals,
)
from prover.settings import setting

MAX_BEAM_WIDTH = 64  # beams per state; the LLM is built to return 2x this many log-probs per step


@dataclass(frozen=True)
class VLLMConfig(ModelPolicyConfig):
    tensor_parallel_size: int = setting(1, "GPUs the model is split across (tensor parallelism).", min=1)
    gpu_memory_utilization: float = setting(
        0.9,
        "Share of each GPU's memory vLLM may take for the weights and its KV cache.",
        min=0,
        max=1,
        min_open=True,
    )
    max_model_len: int | None = setting(
        None,
        "Longest sequence (prompt + new tokens) vLLM plans its KV cache for [default: --max-prompt-tokens "
        "+ --max-new-tokens].",
        min=16,
        metavar="TOKENS",
    )


NEEDS_VLLM = "the vllm backend needs vLLM: pip install '.[vllm]' (on a machine with a CUDA GPU)"


class NoLogprobsError(ProverError):
    """vLLM answered without the log-probs that every candidate's score is made of."""


def import_vllm() -> types.SimpleNamespace:
    """vLLM's ``LLM`` and ``SamplingParams``."""
    try:
        import vllm
    except ImportError:
        raise MissingDependencyError(NEEDS_VLLM) from None
    return types.SimpleNamespace(LLM=vllm.LLM, SamplingParams=vllm.SamplingParams)


class VLLMPolicy(PromptedPolicy):
    """Proposes tactics with a vLLM engine; see the module docstring.

    ``llm`` is an engine already built (or a test fake); ``vllm`` the namespace holding
    ``LLM`` and ``SamplingParams`` (default: the real ones, imported lazily). Without
    ``llm``, ``config.model`` is loaded on the GPU(s).
    """

    def __init__(self, config: VLLMConfig = VLLMConfig(), llm=None, vllm=None):
        self.config = config
        self.format: PromptFormat = get_prompt(config.prompt)
        self.vllm = vllm or import_vllm()
        if llm is None:
            llm = self._load(config)
        self.llm = llm
        self.tokenizer = llm.get_tokenizer()
        self.end_ids = end_token_ids(self.format, self.tokenizer)
        self.special_stops = special_stop_ids(self.format, self.tokenizer)
        self.text_stops = [stop for stop in self.format.stop if stop not in self.special_stops]

    def _load(self, config: VLLMConfig):
        try:
            return self.vllm.LLM(
                model=config.model,
                dtype=config.dtype,
                seed=config.seed,
                max_model_len=config.max_model_len or config.max_prompt_tokens + config.max_new_tokens,
                tensor_parallel_size=config.tensor_parallel_size,
                gpu_memory_utilization=config.gpu_memory_utilization,
                trust_remote_code=config.trust_remote_code,
                max_logprobs=2 * MAX_BEAM_WIDTH,
            )
        except (OSError, ValueError, RuntimeError) as exc:
            lines = str(exc).strip().splitlines() or [type(exc).__name__]
            raise MissingDependencyError(f"vLLM cannot load model '{config.model}': {lines[0]}") from None

    def _propose_prompts(self, prompts: list[str], k: int) -> list[list[Proposal]]:
        """``k`` candidates per prompt (see ``PromptedPolicy.propose``)."""
        if self.config.decoding == "beam" and k > 1:
            candidates = self._beam_search(prompts, k)
        else:
            candidates = self._sample(prompts, k)
        return [to_proposals(per_state, self.config.length_normalise) for per_state in candidates]

    # ---- sampling ---------------------------------------------------------------------------

    def _sample(self, prompts: list[str], k: int) -> list[list[tuple[str, float, int]]]:
        greedy = self.config.temperature == 0 or self.config.decoding == "beam"
        params = self.vllm.SamplingParams(
            n=1 if greedy else k,
            temperature=0.0 if greedy else self.config.temperature,
            top_p=1.0 if greedy else self.config.top_p,
            max_tokens=self.config.max_new_tokens,
            logprobs=0,
            stop=self.text_stops or None,
            stop_token_ids=sorted(self.special_stops.values()) or None,
        )
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        candidates = []
        for request in outputs:
            per_state = []
            for completion in request.outputs:
                cut = cut_continuation(self.format, completion.token_ids, self.decode, self.end_ids)
                per_state.append((cut.tactic, self._score(completion, cut), max(cut.num_tokens, 1)))
            candidates.append(per_state)
        return candidates

    def _score(self, completion, cut) -> float:
        """The summed log-prob of ``completion``'s tokens ``cut.start:cut.end``."""
        token_ids = list(completion.token_ids)
        if completion.logprobs:
            return _sum_token_logprobs(token_ids[cut.start : cut.end], completion.logprobs[cut.start : cut.end])
        whole = cut.start == 0 and cut.end >= len(token_ids)
        if completion.cumulative_logprob is not None and whole:
            return float(completion.cumulative_logprob)
        if not token_ids:
            return 0.0
        raise NoLogprobsError(
            "vLLM returned no log-probs for the sampled tokens (cumulative_logprob=None, logprobs=None), so no "
            "tactic can be scored; use a vLLM of the supported range: pip install '.[vllm]'"
        )

    # ---- beam search ------------------------------------------------------------------------

    def _beam_search(self, prompts: list[str], k: int) -> list[list[tuple[str, float, int]]]:
        if k > MAX_BEAM_WIDTH:
            raise ProverError(
                f"vLLM beam search takes at most {MAX_BEAM_WIDTH} beams per state, not {k}; "
                "lower --tactics-per-node or use --decoding sampling"
            )
        rule = self.beam_rule
        eos = getattr(self.tokenizer, "eos_token_id", None)
        searches = []
        for prompt in prompts:
            prompt_ids = list(self.tokenizer(prompt)["input_ids"])
            searches.append((prompt_ids, BeamState(len(prompt_ids))))
        step = self.vllm.SamplingParams(n=1, temperature=0.0, max_tokens=1, logprobs=2 * k, detokenize=False)
        ends = self.ends_tactic
        for step_number in range(self.config.max_new_tokens):
            running = [(prompt_ids, search, beam) for prompt_ids, search in searches for beam in search.running]
            if not running:
                break
            requests = [{"prompt_token_ids": prompt_ids + beam.tokens} for prompt_ids, _, beam in running]
            outputs = self.llm.generate(requests, step, use_tqdm=False)
            expansions: dict[int, list[tuple[float, Beam, int, float]]] = {}
            for (_, search, beam), output in zip(running, outputs):
                next_logprobs = output.outputs[0].logprobs
                if not next_logprobs:
                    raise NoLogprobsError(
                        "vLLM returned no log-probs for a beam search step, so no beam can be scored; use a vLLM "
                        "of the supported range: pip install '.[vllm]'"
                    )
                for token, entry in next_logprobs[0].items():
                    logprob = _logprob_value(entry)
                    expansions.setdefault(id(search), []).append((beam.logprob + logprob, beam, token, logprob))
            last = step_number == self.config.max_new_tokens - 1
            for _, search in searches:
                advance(search, expansions.get(id(search), []), k, rule, ends, eos, last_step=last)
        return [self.beam_candidates(final_beams(search, k, rule, eos)) for _, search in searches]


def _logprob_value(entry) -> float:
    return float(entry.logprob if hasattr(entry, "logprob") else entry)


def _sum_token_logprobs(token_ids, token_logprobs) -> float:
    """Sum of each chosen token's log-prob; vLLM gives one {token_id: Logprob} per step."""
    total = 0.0
    for token, options in zip(token_ids, token_logprobs):
        if not options or token not in options:
            raise NoLogprobsError(f"vLLM's log-probs lack the sampled token {token}; no tactic can be scored")
        total += _logprob_value(options[token])
    return total


def build(config: VLLMConfig) -> VLLMPolicy:
    """A ``VLLMPolicy`` with ``config.model`` loaded."""
    return VLLMPolicy(config)
