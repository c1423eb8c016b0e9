"""A tactic policy on vLLM: the interface and prompts of ``prover.policies.hf``, faster on a GPU.

Sampling uses ``LLM.generate(prompts, SamplingParams(n=k, temperature, top_p, max_tokens,
logprobs=0, stop=[...]))``: all states in one call, ``k`` completions each, scored by
``CompletionOutput.cumulative_logprob`` (vLLM reports it only when ``logprobs`` is set,
hence ``logprobs=0``: the sampled token's own log-prob and no alternatives). Beam search
uses ``LLM.beam_search(prompts, BeamSearchParams(beam_width=k, max_tokens=...))``, the API
that replaced ``SamplingParams(use_beam_search=True)``; it knows no stop strings, so each
beam is cut at the prompt format's stop and re-scored from its per-token log-probs.

vLLM is imported here only, and only when this policy is built:

    policy = VLLMPolicy(VLLMConfig(model="EleutherAI/llemma_7b"))
    policy.propose(["x : ℕ\\n⊢ x + 0 = x"], k=8)

Tests pass a fake ``llm`` (and fake ``vllm`` classes) that mimic vLLM's output objects.
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from typing import Sequence

from search import Proposal

from prover.errors import MissingDependencyError
from prover.policies.prompts import (
    ModelPolicyConfig,
    PromptedPolicy,
    PromptFormat,
    cut_continuation,
    get_prompt,
    to_proposals,
)

@dataclass(frozen=True)
class VLLMConfig(ModelPolicyConfig):
    pass


NEEDS_VLLM = "the vllm backend needs vLLM: pip install '.[vllm]' (on a machine with a CUDA GPU)"


def import_vllm() -> types.SimpleNamespace:
    """vLLM's ``LLM``, ``SamplingParams`` and ``BeamSearchParams`` (None where too old)."""
    try:
        import vllm
    except ImportError:
        raise MissingDependencyError(NEEDS_VLLM) from None
    try:
        from vllm.sampling_params import BeamSearchParams
    except ImportError:
        BeamSearchParams = None
    return types.SimpleNamespace(LLM=vllm.LLM, SamplingParams=vllm.SamplingParams, BeamSearchParams=BeamSearchParams)


class VLLMPolicy(PromptedPolicy):
    """Proposes tactics with a vLLM engine; see the module docstring.

    ``llm`` is an engine already built (or a test fake); ``vllm`` the namespace holding
    ``SamplingParams`` and ``BeamSearchParams`` (default: the real ones, imported lazily).
    Without ``llm``, ``config.model`` is loaded, in bf16, on the GPU.
    """

    def __init__(self, config: VLLMConfig = VLLMConfig(), llm=None, vllm=None):
        self.config = config
        self.format: PromptFormat = get_prompt(config.prompt)
        self.vllm = vllm or import_vllm()
        if llm is None:
            llm = self._load(config)
        self.llm = llm
        self.tokenizer = llm.get_tokenizer()

    def _load(self, config: VLLMConfig):
        try:
            return self.vllm.LLM(
                model=config.model,
                dtype="bfloat16",
                seed=config.seed,
                max_model_len=config.max_prompt_tokens + config.max_new_tokens,
            )
        except (OSError, ValueError, RuntimeError) as exc:
            lines = str(exc).strip().splitlines() or [type(exc).__name__]
            raise MissingDependencyError(f"vLLM cannot load model '{config.model}': {lines[0]}") from None

    def propose(self, states: Sequence[str], k: int) -> list[list[Proposal]]:
        """``k`` candidates per state (one when greedy), best log-prob first, in one engine call;
        duplicates and empty ones included: the engine merges them (``search.merge_proposals``)."""
        if not states or k < 1:
            return [[] for _ in states]
        prompts = [self.render(state) for state in states]
        if self.config.decoding == "beam" and k > 1:
            candidates = self._beam_search(prompts, k)
        else:
            candidates = self._sample(prompts, k)
        return [to_proposals(per_state, self.config.length_normalise) for per_state in candidates]

    def _sample(self, prompts: list[str], k: int) -> list[list[tuple[str, float, int]]]:
        greedy = self.config.temperature == 0 or self.config.decoding == "beam"
        params = self.vllm.SamplingParams(
            n=1 if greedy else k,
            temperature=0.0 if greedy else self.config.temperature,
            top_p=1.0 if greedy else self.config.top_p,
            max_tokens=self.config.max_new_tokens,
            logprobs=0,
            stop=list(self.format.stop) or None,
        )
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        candidates = []
        for request in outputs:
            per_state = []
            for completion in request.outputs:
                # vLLM has already stopped at the stop string (and dropped it) or at EOS.
                tactic = self.format.cut(completion.text)
                num_tokens = max(len(completion.token_ids), 1)
                logprob = completion.cumulative_logprob
                if logprob is None:  # older engines without cumulative scores
                    logprob = _sum_token_logprobs(completion.token_ids, completion.logprobs or [])
                per_state.append((tactic, float(logprob), num_tokens))
            candidates.append(per_state)
        return candidates

    def _beam_search(self, prompts: list[str], k: int) -> list[list[tuple[str, float, int]]]:
        if self.vllm.BeamSearchParams is None or not hasattr(self.llm, "beam_search"):
            raise MissingDependencyError("beam search needs vLLM >= 0.6.3 (LLM.beam_search); upgrade vLLM or use --decoding sampling")
        params = self.vllm.BeamSearchParams(
            beam_width=k,
            max_tokens=self.config.max_new_tokens,
            length_penalty=1.0 if self.config.length_normalise else 0.0,
        )
        outputs = self.llm.beam_search([{"prompt": p} for p in prompts], params)
        decode = lambda ids: self.tokenizer.decode(ids, skip_special_tokens=True)  # noqa: E731
        eos = getattr(self.tokenizer, "eos_token_id", None)
        candidates = []
        for prompt, output in zip(prompts, outputs):
            per_state = []
            for sequence in output.sequences:
                token_logprobs = sequence.logprobs or []
                if token_logprobs:
                    # ``tokens`` holds the prompt too; one logprobs entry per generated token.
                    generated = list(sequence.tokens[len(sequence.tokens) - len(token_logprobs):])
                    tactic, num_tokens = cut_continuation(self.format, generated, decode, eos)
                    logprob = _sum_token_logprobs(generated[:num_tokens], token_logprobs[:num_tokens])
                else:
                    text = sequence.text or ""
                    tactic = self.format.cut(text[len(prompt):] if text.startswith(prompt) else text)
                    logprob, num_tokens = sequence.cum_logprob, max(len(sequence.tokens), 1)
                per_state.append((tactic, float(logprob), num_tokens))
            candidates.append(per_state)
        return candidates


def _sum_token_logprobs(token_ids, token_logprobs) -> float:
    """Sum of each chosen token's log-prob; vLLM gives one {token_id: Logprob} per step."""
    total = 0.0
    for token, options in zip(token_ids, token_logprobs):
        entry = options[token]
        total += entry.logprob if hasattr(entry, "logprob") else float(entry)
    return total


def build(config: VLLMConfig) -> VLLMPolicy:
    """A ``VLLMPolicy`` with ``config.model`` loaded."""
    return VLLMPolicy(config)
