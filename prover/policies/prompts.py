"""Prompt formats for model policies: how a tactic state becomes a prompt, and where the
model's continuation is cut to give one tactic.

Formats, chosen by name (``ModelPolicyConfig.prompt``, ``--prompt``), each the one its
model was trained or evaluated with; ``tests/test_policies_prompts.py`` pins each to the
text its source documents:

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
    ReProver's format, ``[GOAL]{state}[PROOFSTEP]``, for causal models trained on it
    (wellecks/llmstep-mathlib4-pythia2.8b, and the tiny policy of ``prover.learn.training``).
    The continuation is the tactic followed by the end-of-sequence token, and is cut
    there. It is deliberately *not* cut at a newline: Lean tactics such as ``calc``
    blocks and ``all_goals`` with an indented body span several lines, and the recorded
    miniF2F proofs contain some.

``bfs_prover``
    BFS-Prover V1/V2 (the ByteDance-Seed/BFS-Prover-* model cards): ``{state}:::``. The
    cards say the model "will echo back the input state followed by the generated
    tactic", and their example decodes prompt and continuation together and keeps what
    follows ``:::``. A continuation that repeats ``{state}:::`` has that echo dropped (and
    its tokens left out of the score); the tactic then runs to the end-of-sequence token.

``internlm_stepprover``
    InternLM2.5-StepProver (the internlm/internlm2_5-step-prover card's input template,
    wrapped in the chat turn that InternLM-Math's ``proofsearch_internLM2.5-StepProver.py``
    sends, and cut at ``<|im_end|>`` as it is)::

        <|im_start|>user
        ---
        NAME: {theorem name}

        ---
        PROOF_BEFORE: {tactics so far}

        ---
        STATE_BEFORE: {state}

        ---
        TACTIC: <|im_end|>
        <|im_start|>assistant

    NAME is the theorem's full name and PROOF_BEFORE the tactics on the path to the state,
    one per line, as the script fills them; the engine gives them to the policy with each
    state (``search.ProofContext``). Without a context both are left empty.

A state is spliced in by concatenation, never by ``str.format`` or ``%``: Lean states are
full of ``{``, ``}`` and ``%``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable, NamedTuple, Sequence

from search import ProofContext, Proposal, Registry

from prover.policies.beams import FINISHES, RANKINGS, Beam, BeamRule
from prover.settings import Settings, setting

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
    token limit). A stop string that the tokenizer holds as one special token (InternLM's
    ``<|im_end|>``) ends the continuation like the end-of-sequence token does, since
    decoding without special tokens never shows it (see ``end_token_ids``).
    ``echo_separator``: the model may repeat ``{state}`` and this separator before the
    tactic (BFS-Prover); the text through its first occurrence is dropped.
    ``target(tactic)`` is the continuation a model should be trained on.
    """

    name: str
    prefix: str
    suffix: str
    stop: tuple[str, ...]
    target_prefix: str = ""  # what a trained continuation starts with, before the tactic
    target_suffix: str | None = None  # what follows it [default: a newline and the first stop]
    echo_separator: str = ""

    def render(self, state: str, context: ProofContext | None = None) -> str:
        """The prompt for ``state`` (whose ``context`` a format may use: see ``prefix_for``)."""
        return self.prefix_for(context) + state + self.suffix

    def prefix_for(self, context: ProofContext | None) -> str:
        """The text before the state; formats that read the proof context override it."""
        return self.prefix

    @property
    def uses_context(self) -> bool:
        """Whether the prompt depends on the proof context (the theorem, the tactics so far)."""
        return type(self).prefix_for is not PromptFormat.prefix_for

    def drop_echo(self, continuation: str) -> str:
        """``continuation`` without a leading echo of ``{state}`` + ``echo_separator``."""
        if self.echo_separator:
            at = continuation.find(self.echo_separator)
            if at != -1:
                return continuation[at + len(self.echo_separator) :]
        return continuation

    def cut(self, continuation: str) -> str:
        """The tactic in a continuation: after any echo, the text before the first stop
        string, stripped."""
        continuation = self.drop_echo(continuation)
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
        if self.target_suffix is not None:
            return self.target_prefix + tactic + self.target_suffix
        if self.stop:
            return self.target_prefix + tactic + "\n" + self.stop[0]
        return self.target_prefix + tactic


# InternLM2.5-StepProver's input template (its model card), as the user turn of the chat
# prompt that InternLM-Math's proofsearch_internLM2.5-StepProver.py builds
# (chat_template_to_prompt around _prompt_function): NAME is the theorem's full Lean name
# (``theorem.full_name``), PROOF_BEFORE the tactics of the path to the state joined by
# newlines (``"\\n".join(steps)``), both empty where the search gives no context.
_INTERNLM_NAME = "<|im_start|>user\n---\nNAME: "
_INTERNLM_PROOF_BEFORE = "\n\n---\nPROOF_BEFORE: "
_INTERNLM_STATE_BEFORE = "\n\n---\nSTATE_BEFORE: "
_INTERNLM_PREFIX = _INTERNLM_NAME + _INTERNLM_PROOF_BEFORE + _INTERNLM_STATE_BEFORE  # no context
_INTERNLM_SUFFIX = "\n\n---\nTACTIC: <|im_end|>\n<|im_start|>assistant\n"


@dataclass(frozen=True)
class InternLMStepProverFormat(PromptFormat):
    """InternLM2.5-StepProver's prompt: the theorem's name and the proof so far before the state."""

    def prefix_for(self, context: ProofContext | None) -> str:
        if context is None:
            return self.prefix
        return (
            _INTERNLM_NAME
            + context.theorem_name
            + _INTERNLM_PROOF_BEFORE
            + "\n".join(context.tactics)
            + _INTERNLM_STATE_BEFORE
        )


PROMPTS: Registry[PromptFormat] = Registry(
    "prompt format",
    {
        "llemma": PromptFormat("llemma", _LLEMMA_PREFIX, _LLEMMA_SUFFIX, stop=("---",), target_prefix="\n"),
        "goal_proofstep": PromptFormat("goal_proofstep", "[GOAL]", "[PROOFSTEP]", stop=()),
        "bfs_prover": PromptFormat("bfs_prover", "", ":::", stop=(), echo_separator=":::"),
        "internlm_stepprover": InternLMStepProverFormat(
            "internlm_stepprover", _INTERNLM_PREFIX, _INTERNLM_SUFFIX, stop=("<|im_end|>",), target_suffix="<|im_end|>"
        ),
    },
)


def get_prompt(name: str) -> PromptFormat:
    """The prompt format called ``name``; a ``ValueError`` with "did you mean" otherwise."""
    return PROMPTS.lookup(name)


def special_stop_ids(fmt: PromptFormat, tokenizer) -> dict[str, int]:
    """The stop strings of ``fmt`` that ``tokenizer`` holds as one added (special) token,
    with their ids: generation must end on those ids, as decoded text never shows them."""
    added = getattr(tokenizer, "added_tokens_encoder", None) or {}
    return {stop: added[stop] for stop in fmt.stop if stop in added}


def end_token_ids(fmt: PromptFormat, tokenizer) -> frozenset[int]:
    """The token ids that end a continuation outright: end-of-sequence and the special
    stop tokens (see ``special_stop_ids``)."""
    ids = set(special_stop_ids(fmt, tokenizer).values())
    eos = getattr(tokenizer, "eos_token_id", None)
    if eos is not None:
        ids.add(eos)
    return frozenset(ids)


class Cut(NamedTuple):
    """Where a tactic lies in a generated continuation: its text, and the tokens that
    produced it, ``token_ids[start:end]`` (their log-probs are its score)."""

    tactic: str
    start: int  # the first token after an echo of the prompt (0 without one)
    end: int  # one past the token that ends the tactic

    @property
    def num_tokens(self) -> int:
        return self.end - self.start


def cut_continuation(fmt: PromptFormat, token_ids: Sequence[int], decode, end_ids) -> Cut:
    """The tactic in a generated continuation, and which of its tokens produced it.

    The tokens run up to and including the one that ends the tactic (the one completing
    a stop string, or an end token: ``end_ids``, an id, a set of ids or None), so that
    summing their log-probs scores "this tactic, then stop" and nothing generated after
    it; they start after an echo of the prompt (``fmt.echo_separator``). ``decode`` turns
    token ids into text without special tokens. Shared by the transformers and vLLM
    backends.
    """
    token_ids = list(token_ids)
    ends = {end_ids} if isinstance(end_ids, int) else set(end_ids or ())
    end_at = next((i for i, token in enumerate(token_ids) if token in ends), -1)
    body = token_ids[:end_at] if end_at >= 0 else token_ids
    text = decode(body)
    start = 0
    if fmt.echo_separator and fmt.echo_separator in text:
        start = _shortest(lambda n: fmt.echo_separator in decode(body[:n]), len(body))
    if fmt.stop and fmt.stop_position(fmt.drop_echo(text)) is not None:
        end = _shortest(lambda n: fmt.stop_position(fmt.drop_echo(decode(body[:n]))) is not None, len(body))
        return Cut(fmt.cut(text), start, end)
    return Cut(fmt.cut(text), start, end_at + 1 if end_at >= 0 else len(token_ids))


def _shortest(holds, length: int) -> int:
    """The smallest n in 1..length with ``holds(n)``, given that ``holds(length)`` and that
    it stays true once true (decoding a longer prefix only appends text)."""
    low, high = 1, length
    while low < high:
        middle = (low + high) // 2
        if holds(middle):
            high = middle
        else:
            low = middle + 1
    return low


def fit_prompt(
    fmt: PromptFormat, state: str, count_tokens, max_tokens: int, context: ProofContext | None = None
) -> str:
    """``fmt.render(state, context)``, cut until it has ``max_tokens`` tokens or fewer
    (``count_tokens(text)`` counts them as the model will see them).

    A format that shows the tactics so far loses the oldest of them first, down to none.
    Then the state is cut from the top: the goal is at the end of a Lean state, so the top
    (the oldest hypotheses) goes first, a whole line at a time while a whole line can be
    kept. A ``ValueError`` if the prompt without any state is already too long.
    """
    if context is not None and fmt.uses_context and context.tactics:
        if count_tokens(fmt.render(state, context)) <= max_tokens:
            return fmt.render(state, context)
        tactics = context.tactics
        kept = _first(
            lambda start: count_tokens(fmt.render(state, replace(context, tactics=tactics[start:]))) <= max_tokens,
            list(range(1, len(tactics) + 1)),
        )
        context = replace(context, tactics=tactics[kept if kept is not None else len(tactics) :])
    fits = lambda start: count_tokens(fmt.render(state[start:], context)) <= max_tokens  # noqa: E731
    if fits(0):
        return fmt.render(state, context)
    if not fits(len(state)):
        raise ValueError(f"the '{fmt.name}' prompt alone is longer than max_prompt_tokens={max_tokens}")
    line_starts = [i + 1 for i, c in enumerate(state) if c == "\n"]
    start = _first(fits, line_starts)
    if start is None:  # the last line alone is too long: cut inside it
        last = line_starts[-1] if line_starts else 0
        start = _first(fits, list(range(last, len(state) + 1)))
    return fmt.render(state[start:], context)


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
    top_p: float = setting(
        0.95, "Nucleus sampling: keep the smallest set of tokens with this much mass.", min=0, max=1, min_open=True
    )
    max_new_tokens: int = setting(128, "Most tokens generated per tactic.", min=1)
    max_prompt_tokens: int = setting(2048, "Longest prompt; longer states lose their first lines.", min=16)
    length_normalise: bool = setting(
        False, "Score a tactic by its mean token log-prob instead of the sum (see --scorer for the priority of states)."
    )
    beam_ranking: str = setting(
        "sum",
        "How beam search ranks finished beams: sum (summed log-prob of the generated tokens), mean (over "
        "generated tokens), vllm_0_1_7 (sum over prompt + generated tokens, as vLLM 0.1.7 did for Llemma).",
        choices=RANKINGS,
    )
    beam_finish: str = setting(
        "top_k",
        "Which of a beam step's 2k candidates may finish: top_k (those ranked in the first k, as "
        "transformers) or any (as vLLM 0.1.7).",
        choices=FINISHES,
    )
    dtype: str = setting(
        "bfloat16",
        "Type of the weights and activations on a GPU; auto takes the model's own (vllm: float32 "
        "becomes float16; hf on the CPU: always float32).",
        choices=("auto", "bfloat16", "float16", "float32"),
    )
    seed: int = setting(0, "Seed of the policy's sampling.")
    trust_remote_code: bool = setting(
        False,
        "Run the Python code that a model's repository ships (models whose architecture transformers "
        "does not know, such as InternLM2); only for repositories you trust.",
    )


class PromptedPolicy:
    """What the model policies share: ``render`` a state into a prompt that fits.

    A subclass sets ``self.format`` (a ``PromptFormat``), ``self.tokenizer`` and
    ``self.config`` (a ``ModelPolicyConfig``).
    """

    format: PromptFormat
    config: ModelPolicyConfig

    @property
    def beam_rule(self) -> BeamRule:
        return BeamRule(self.config.beam_ranking, self.config.beam_finish)

    def render(self, state: str, context: ProofContext | None = None) -> str:
        """The prompt for ``state`` in its proof ``context``, cut to fit ``max_prompt_tokens``
        (see ``fit_prompt``)."""
        return fit_prompt(self.format, state, self.count_tokens, self.config.max_prompt_tokens, context)

    def propose(self, states: Sequence[str], k: int) -> list[list[Proposal]]:
        """``k`` candidates per state (one when greedy), best log-prob first; duplicates and
        empty ones included: the engine merges them (``search.merge_proposals``)."""
        return self.propose_in_context(states, [None] * len(states), k)

    def propose_in_context(
        self, states: Sequence[str], contexts: Sequence[ProofContext | None], k: int
    ) -> list[list[Proposal]]:
        """``propose``, with each state's proof context for the prompt formats that show it
        (``search.ContextualPolicy``); the others ignore it."""
        if not states or k < 1:
            return [[] for _ in states]
        return self._propose_prompts([self.render(state, context) for state, context in zip(states, contexts)], k)

    def _propose_prompts(self, prompts: list[str], k: int) -> list[list[Proposal]]:
        """The model's ``k`` candidates per rendered prompt: the hf and vLLM policies each
        generate them their own way."""
        raise NotImplementedError

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text)["input_ids"])

    def decode(self, token_ids: Sequence[int]) -> str:
        """Token ids as text, without special tokens."""
        return self.tokenizer.decode(list(token_ids), skip_special_tokens=True)

    def ends_tactic(self, beam: Beam) -> bool:
        """Whether ``beam``'s last token ends its tactic: an end token (``self.end_ids``), or
        the completion of a stop string of ``self.text_stops`` (the beam's earlier tokens
        held none, or it would have ended there)."""
        if beam.tokens[-1] in self.end_ids:
            return True
        if not self.text_stops:
            return False
        # A stop string ends within the last few tokens: decoding those is enough to see it
        # appear (a token is at least one character, or part of one).
        window = 4 * max(len(stop) for stop in self.text_stops) + 4
        tail = self.decode(beam.tokens[-window:])
        return any(stop in tail for stop in self.text_stops)

    def beam_candidates(self, beams: Sequence[Beam]) -> list[tuple[str, float, int]]:
        """(tactic, summed log-prob, token count) of each beam, cut where its tactic ends."""
        candidates = []
        for beam in beams:
            cut = cut_continuation(self.format, beam.tokens, self.decode, self.end_ids)
            candidates.append((cut.tactic, sum(beam.token_logprobs[cut.start : cut.end]), max(cut.num_tokens, 1)))
        return candidates
