"""Prompt formats for model policies: how a tactic state becomes a prompt, and where the
model's continuation is cut to give one tactic.

Two formats, chosen by name (``ModelPolicyConfig.prompt``, ``--prompt``):

``llemma``
    The few-shot "formal2formal" prompt of Llemma's Lean 4 evaluation
    (wellecks/llemma_formal2formal, ``proofsearch.py: _prompt_fewshot``), byte for byte::

        Given the Lean 4 tactic state, suggest a next tactic.
        Here are some examples:

        Tactic state:
        ---
        <example state>
        ---
        Next tactic:
        ---
        <example tactic>
        ---
        ... (three examples, each followed by a blank line)

        Tactic state:
        ---
        {state}
        ---
        Next tactic:
        ---

    The prompt ends with ``---`` and no newline; the model continues with a newline, the
    tactic, and a closing ``---``. The continuation is cut at the first ``---`` and
    stripped, so a tactic may span several lines.

``goal_proofstep``
    ReProver's format, ``[GOAL]{state}[PROOFSTEP]``, for models trained on it (such as the
    tiny policy of ``prover.training``). The continuation is the tactic followed by
    the end-of-sequence token, and is cut there. It is deliberately *not* cut at a newline:
    Lean tactics such as ``calc`` blocks and ``all_goals`` with an indented body span
    several lines, and the recorded miniF2F proofs contain some.

A state is spliced in by concatenation, never by ``str.format`` or ``%``: Lean states are
full of ``{``, ``}`` and ``%``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from search import Proposal

from prover.config import Settings, setting

# The few-shot prefix of wellecks/llemma_formal2formal (proofsearch.py, _prompt_fewshot),
# kept exactly: Llemma's published miniF2F numbers were measured with it.
_LLEMMA_PREFIX = """Given the Lean 4 tactic state, suggest a next tactic.
Here are some examples:

Tactic state:
---
α : Type u_1
r : α → α → Prop
inst✝¹ : DecidableEq α
inst✝ : IsIrrefl α r
⊢ CutExpand r ≤ InvImage (Finsupp.Lex (rᶜ ⊓ fun x x_1 => x ≠ x_1) fun x x_1 => x < x_1) ↑toFinsupp
---
Next tactic:
---
rintro s t ⟨u, a, hr, he⟩
---

Tactic state:
---
ι : Type u_1
I✝ J✝ : Box ι
x y : ι → ℝ
I J : WithBot (Box ι)
⊢ ↑I = ↑J ↔ I = J
---
Next tactic:
---
simp only [Subset.antisymm_iff, ← le_antisymm_iff, withBotCoe_subset_iff]
---

Tactic state:
---
m n : ℕ
h : Nat.coprime m n
⊢ Nat.gcd m n = 1
---
Next tactic:
---
rw [← h.gcd_eq_one]
---

Tactic state:
---
"""

_LLEMMA_SUFFIX = """
---
Next tactic:
---"""


@dataclass(frozen=True)
class PromptFormat:
    """A prompt is ``prefix + state + suffix``; the continuation is cut at ``stop``.

    ``stop`` empty means the continuation ends only at the end-of-sequence token (or the
    token limit). ``target(tactic)`` is the continuation a model should be trained on.
    """

    name: str
    prefix: str
    suffix: str
    stop: tuple[str, ...]
    target_prefix: str = ""  # what a trained continuation starts with, before the tactic

    def render(self, state: str) -> str:
        """The prompt for ``state``."""
        return self.prefix + state + self.suffix

    def cut(self, continuation: str) -> str:
        """The tactic in a continuation: text before the first stop string, stripped."""
        end = len(continuation)
        for stop in self.stop:
            at = continuation.find(stop)
            if at != -1:
                end = min(end, at)
        return continuation[:end].strip()

    def stop_position(self, continuation: str) -> int | None:
        """Where the first stop string ends in ``continuation``, or None if it has none."""
        ends = [continuation.find(s) + len(s) for s in self.stop if s in continuation]
        return min(ends) if ends else None

    def target(self, tactic: str) -> str:
        """The continuation that proposes ``tactic`` (without any end-of-sequence token)."""
        if self.stop:
            return self.target_prefix + tactic + "\n" + self.stop[0]
        return self.target_prefix + tactic


PROMPTS: dict[str, PromptFormat] = {
    "llemma": PromptFormat("llemma", _LLEMMA_PREFIX, _LLEMMA_SUFFIX, stop=("---",), target_prefix="\n"),
    "goal_proofstep": PromptFormat("goal_proofstep", "[GOAL]", "[PROOFSTEP]", stop=()),
}


def get_prompt(name: str) -> PromptFormat:
    """The prompt format called ``name``; a ``ValueError`` names the known ones otherwise."""
    try:
        return PROMPTS[name]
    except KeyError:
        raise ValueError(f"unknown prompt format '{name}'; choose one of: {', '.join(PROMPTS)}") from None


def cut_continuation(
    fmt: PromptFormat, token_ids: list[int], decode, eos_token_id: int | None
) -> tuple[str, int]:
    """The tactic in a generated continuation, and how many of its tokens produced it.

    The count runs up to and including the token that ends the tactic (the one completing
    a stop string, or the end-of-sequence token), so that summing those tokens' log-probs
    scores "this tactic, then stop" and nothing generated after it. ``decode`` turns token
    ids into text without special tokens. Shared by the transformers and vLLM backends.
    """
    eos_at = token_ids.index(eos_token_id) if eos_token_id is not None and eos_token_id in token_ids else -1
    body = token_ids[:eos_at] if eos_at >= 0 else token_ids
    text = decode(body)
    if fmt.stop and fmt.stop_position(text) is not None:
        # The shortest prefix whose text already holds a stop string; decoding a longer
        # prefix only appends text, so "holds a stop string" is monotone in the length.
        low, high = 1, len(body)
        while low < high:
            middle = (low + high) // 2
            if fmt.stop_position(decode(body[:middle])) is None:
                low = middle + 1
            else:
                high = middle
        return fmt.cut(text), low
    if eos_at >= 0:
        return fmt.cut(text), eos_at + 1
    return fmt.cut(text), len(token_ids)


def fit_prompt(fmt: PromptFormat, state: str, count_tokens, max_tokens: int) -> str:
    """``fmt.render(state)``, with the state cut from the top until it has ``max_tokens``
    tokens or fewer (``count_tokens(text)`` counts them as the model will see them).

    The goal is at the end of a Lean state, so the top (the oldest hypotheses) goes first,
    a whole line at a time while a whole line can be kept. A ``ValueError`` if the prompt
    without any state is already too long.
    """
    fits = lambda start: count_tokens(fmt.render(state[start:])) <= max_tokens  # noqa: E731
    if fits(0):
        return fmt.render(state)
    if not fits(len(state)):
        raise ValueError(f"the '{fmt.name}' prompt alone is longer than max_prompt_tokens={max_tokens}")
    line_starts = [i + 1 for i, c in enumerate(state) if c == "\n"]
    start = _first(fits, line_starts)
    if start is None:  # the last line alone is too long: cut inside it
        last = line_starts[-1] if line_starts else 0
        start = _first(fits, list(range(last, len(state) + 1)))
    return fmt.render(state[start:])


def _first(fits, starts: list[int]) -> int | None:
    # Later starts keep less text, so the starts that fit form a tail of the list.
    low, high = 0, len(starts)
    while low < high:
        middle = (low + high) // 2
        if fits(starts[middle]):
            high = middle
        else:
            low = middle + 1
    return starts[low] if low < len(starts) else None


def to_proposals(candidates: Iterable[tuple[str, float, int]], length_normalise: bool = False) -> list[Proposal]:
    """(tactic, summed log-prob, token count) samples of one state -> proposals, best first,
    scored by the summed log-prob or, with ``length_normalise``, the mean per token.

    Duplicates and empty tactics are left in: the engine merges proposals once
    (``search.merge_proposals``), keeping each tactic's best score.
    """
    proposals = [
        Proposal(tactic, min(logprob / max(num_tokens, 1) if length_normalise else logprob, 0.0))
        for tactic, logprob, num_tokens in candidates
    ]
    return sorted(proposals, key=lambda p: -p.logprob)


@dataclass(frozen=True)
class ModelPolicyConfig(Settings):
    """Settings shared by the policies that run a causal LM (``hf``, ``vllm``)."""

    model: str = setting("EleutherAI/llemma_7b", "Hugging Face model id or local path.")
    prompt: str = setting("llemma", "Prompt format.", choices=PROMPTS)
    decoding: str = setting("sampling", "How the k candidates are drawn.", choices=("sampling", "beam"))
    temperature: float = setting(1.0, "Sampling temperature; 0 is greedy.", min=0)
    top_p: float = setting(0.95, "Nucleus sampling: keep the smallest set of tokens with this much mass.",
                           min=0, max=1, min_open=True)
    max_new_tokens: int = setting(128, "Most tokens generated per tactic.", min=1)
    max_prompt_tokens: int = setting(2048, "Longest prompt; longer states lose their first lines.", min=16)
    length_normalise: bool = setting(
        False, "Score a tactic by its mean token log-prob instead of the sum (see --scorer for the priority "
        "of states)."
    )
    seed: int = setting(0, "Seed of the policy's sampling.")


class PromptedPolicy:
    """What the model policies share: ``render`` a state into a prompt that fits.

    A subclass sets ``self.format`` (a ``PromptFormat``), ``self.tokenizer`` and
    ``self.config`` (a ``ModelPolicyConfig``).
    """

    format: PromptFormat
    config: ModelPolicyConfig

    def render(self, state: str) -> str:
        """The prompt for ``state``, cut from the top to fit ``max_prompt_tokens``
        (see ``fit_prompt``)."""
        return fit_prompt(self.format, state, self.count_tokens, self.config.max_prompt_tokens)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text)["input_ids"])
