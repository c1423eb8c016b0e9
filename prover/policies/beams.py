"""Beam search bookkeeping shared by the model policies: which beams run on, which finish,
and how finished beams are ranked, as each source's decoder did it.

A backend supplies, step by step, each running beam's most likely next tokens; ``advance``
does the rest. Two rules differ between the sources (``BeamRule``):

``ranking`` — the score that orders finished beams (and decides when a search is done):

- ``sum``: the summed log-prob of the generated tokens (transformers' and vLLM's
  ``length_penalty=0``; InternLM-Math's ``proofsearch_internLM2.5-StepProver.py``);
- ``mean``: that sum over the number of generated tokens (transformers'
  ``length_penalty=1``, whose length counts generated tokens only);
- ``vllm_0_1_7``: that sum over prompt + generated tokens, less one when the last token is
  the end-of-sequence token: ``Sequence.get_beam_search_score`` of vLLM 0.1.x-0.2.x with
  its default ``length_penalty=1``, what wellecks/llemma_formal2formal and llmstep ran
  (vLLM 0.1.7 in their requirements). With a long prompt it is close to the sum.

``finish`` — which of a step's 2k best candidates may finish:

- ``top_k``: only one ranked among the step's first k (transformers' ``BeamSearchScorer``);
- ``any``: any of the 2k (vLLM 0.1.x-0.2.x ``LLMEngine._process_sequence_group_outputs``:
  every finished child enters the pool of finished beams, which keeps its k best).

Running beams are the k best unfinished candidates by summed log-prob under every rule (at
one step they all have the same length, so every ranking orders them alike). A state's
search ends once k beams have finished and no running beam's current score beats the worst
of them (vLLM's ``early_stopping=False``, transformers' default heuristic), or at the token
limit, where ``any`` (vLLM) pools the still-running beams with the finished ones and
``top_k`` (transformers) fills up with them when fewer than k finished.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

RANKINGS = ("sum", "mean", "vllm_0_1_7")
FINISHES = ("top_k", "any")


@dataclass(frozen=True)
class BeamRule:
    ranking: str = "sum"
    finish: str = "top_k"

    @property
    def transformers_native(self) -> bool:
        """Whether transformers' own beam search does this (``length_penalty`` 0 or 1)."""
        return self.finish == "top_k" and self.ranking in ("sum", "mean")


@dataclass
class Beam:
    tokens: list[int]  # generated so far
    token_logprobs: list[float]
    logprob: float = 0.0  # their sum
    parent: int = -1  # the backend's row of the beam it grew from (its KV cache)


@dataclass
class BeamState:
    """The beams of one prompt."""

    prompt_length: int  # tokens, for the vllm_0_1_7 ranking
    running: list[Beam] = field(default_factory=lambda: [Beam([], [])])
    finished: list[tuple[float, Beam]] = field(default_factory=list)  # (score, beam), best first, at most k


def beam_score(rule: BeamRule, beam: Beam, prompt_length: int, eos_id: int | None) -> float:
    """The score that ranks ``beam`` under ``rule.ranking`` (see the module docstring)."""
    generated = len(beam.tokens)
    if rule.ranking == "sum":
        return beam.logprob
    if rule.ranking == "mean":
        return beam.logprob / max(generated, 1)
    length = prompt_length + generated
    if eos_id is not None and beam.tokens and beam.tokens[-1] == eos_id:
        length -= 1  # "HF implementation does not count the EOS token" (vLLM's note)
    return beam.logprob / max(length, 1)


def advance(
    search: BeamState,
    expansions: list[tuple[float, Beam, int, float]],
    k: int,
    rule: BeamRule,
    ends: Callable[[Beam], bool],
    eos_id: int | None,
    last_step: bool = False,
) -> None:
    """One step of ``search``. ``expansions`` are (summed log-prob, parent beam, token,
    token log-prob); the 2k best by summed log-prob are the step's candidates."""
    expansions.sort(key=lambda item: -item[0])  # stable: ties keep the engine's order
    score = lambda beam: beam_score(rule, beam, search.prompt_length, eos_id)  # noqa: E731
    running: list[Beam] = []
    for rank, (total, beam, token, logprob) in enumerate(expansions[: 2 * k]):
        grown = Beam(beam.tokens + [token], beam.token_logprobs + [logprob], total, beam.parent)
        if ends(grown):
            if rule.finish == "any" or rank < k:
                search.finished.append((score(grown), grown))
        elif rule.finish == "any" or len(running) < k:
            running.append(grown)
        if rule.finish == "top_k" and len(running) == k:
            break
    running = running[:k]  # already in order of summed log-prob
    if last_step and rule.finish == "any":
        # vLLM ends the beams still running at the token limit and pools them with the rest.
        search.finished.extend((score(beam), beam) for beam in running)
        running = []
    search.finished.sort(key=lambda item: -item[0])
    del search.finished[k:]
    search.running = running
    if len(search.finished) == k and running:
        # Done once no running beam scores better than the worst finished one: exact
        # for summed log-probs, which only fall; the sources' heuristic for the others.
        if max(score(beam) for beam in running) <= search.finished[-1][0]:
            search.running = []


def final_beams(search: BeamState, k: int, rule: BeamRule, eos_id: int | None) -> list[Beam]:
    """The k best beams of ``search``: finished ones, then running ones if too few finished."""
    beams = [beam for _, beam in search.finished]
    if len(beams) < k:
        rest = sorted(search.running, key=lambda b: beam_score(rule, b, search.prompt_length, eos_id), reverse=True)
        beams += rest[: k - len(beams)]
    return beams
