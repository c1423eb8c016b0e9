"""What the model policies share, without a model: each prompt format renders a state into
the exact text its source documents and cuts a continuation into a tactic; samples become
proposals (``to_proposals``), and the engine, not the policy, merges them (``merge_proposals``)."""

from __future__ import annotations

import pytest

from search import Proposal, merge_proposals

from prover.policies.prompts import (
    PROMPTS,
    ModelPolicyConfig,
    cut_continuation,
    end_token_ids,
    get_prompt,
    special_stop_ids,
    to_proposals,
)
from prover.settings import ConfigError

# A state with the characters that str.format and % would trip on.
STATE = "x : ℕ\nh : {x} = %d\n⊢ x + 0 = x"


class CharTokenizer:
    """One token per character (id = code point), EOS 0, and optional added tokens that
    decode to nothing, as special tokens do with skip_special_tokens."""

    eos_token_id = 0

    def __init__(self, added: dict[str, int] | None = None):
        self.added_tokens_encoder = added or {}

    def encode(self, text: str) -> list[int]:
        for token, token_id in self.added_tokens_encoder.items():
            if text.startswith(token):
                return [token_id] + self.encode(text[len(token) :])
        return [ord(c) for c in text[:1]] + self.encode(text[1:]) if text else []

    def decode(self, ids) -> str:
        special = set(self.added_tokens_encoder.values()) | {0}
        return "".join(chr(i) for i in ids if i not in special)


def test_every_prompt_format_is_pinned_here():
    pinned = {"llemma", "goal_proofstep", "bfs_prover", "internlm_stepprover"}
    assert set(PROMPTS) == pinned, "a new prompt format needs a test pinning it to its documented text"


def test_goal_proofstep_prompt_is_reprovers_and_ends_at_the_end_token():
    """wellecks/llmstep-mathlib4-pythia2.8b's card: ``[GOAL]tactic-state[PROOFSTEP]next-tactic<|endoftext|>``."""
    fmt = get_prompt("goal_proofstep")
    assert fmt.render(STATE) == "[GOAL]x : ℕ\nh : {x} = %d\n⊢ x + 0 = x[PROOFSTEP]"
    tokenizer = CharTokenizer()
    ids = tokenizer.encode("rw [h]\n  simp") + [0] + tokenizer.encode("junk")
    cut = cut_continuation(fmt, ids, tokenizer.decode, end_token_ids(fmt, tokenizer))
    assert cut == ("rw [h]\n  simp", 0, len("rw [h]\n  simp") + 1)  # through the end token


def test_bfs_prover_prompt_is_the_state_then_three_colons_and_its_echo_is_dropped():
    """ByteDance-Seed/BFS-Prover-V2-7B's card: input ``"{state}:::"``; the model "will echo
    back the input state followed by the generated tactic"."""
    fmt = get_prompt("bfs_prover")
    assert fmt.render(STATE) == "x : ℕ\nh : {x} = %d\n⊢ x + 0 = x:::"
    tokenizer = CharTokenizer()
    echoed = tokenizer.encode(STATE + ":::") + tokenizer.encode("nlinarith [sq_nonneg (a - b)]") + [0]
    cut = cut_continuation(fmt, echoed, tokenizer.decode, end_token_ids(fmt, tokenizer))
    assert cut.tactic == "nlinarith [sq_nonneg (a - b)]"
    # Scored on the tactic's tokens and the end token, not on the echoed state.
    assert (cut.start, cut.end) == (len(STATE) + 3, len(echoed))
    plain = tokenizer.encode("linarith") + [0]
    assert cut_continuation(fmt, plain, tokenizer.decode, 0) == ("linarith", 0, len(plain))


def test_internlm_stepprover_prompt_is_its_cards_template_in_a_chat_turn():
    """internlm/internlm2_5-step-prover's card template, in the chat turn InternLM-Math's
    proofsearch_internLM2.5-StepProver.py sends; NAME and PROOF_BEFORE empty."""
    fmt = get_prompt("internlm_stepprover")
    assert fmt.render(STATE) == (
        "<|im_start|>user\n"
        "---\nNAME: \n\n"
        "---\nPROOF_BEFORE: \n\n"
        "---\nSTATE_BEFORE: x : ℕ\nh : {x} = %d\n⊢ x + 0 = x\n\n"
        "---\nTACTIC: <|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    # With <|im_end|> a special token (InternLM's tokenizer), it ends the continuation as a token id.
    tokenizer = CharTokenizer(added={"<|im_end|>": 92542})
    assert special_stop_ids(fmt, tokenizer) == {"<|im_end|>": 92542}
    assert end_token_ids(fmt, tokenizer) == {0, 92542}
    ids = tokenizer.encode("rw [← Nat.mod_add_div (2 * m + 1) 8]<|im_end|>\nmore")
    cut = cut_continuation(fmt, ids, tokenizer.decode, end_token_ids(fmt, tokenizer))
    assert cut == ("rw [← Nat.mod_add_div (2 * m + 1) 8]", 0, ids.index(92542) + 1)
    # Where the tokenizer has no such token, "<|im_end|>" is a stop string in the text.
    plain = CharTokenizer()
    ids = plain.encode("simp<|im_end|>junk")
    assert cut_continuation(fmt, ids, plain.decode, 0) == ("simp", 0, len("simp<|im_end|>"))


def test_llemma_prompt_is_cut_at_the_closing_dashes():
    fmt = get_prompt("llemma")
    assert fmt.render(STATE).endswith("Tactic state:\n---\nx : ℕ\nh : {x} = %d\n⊢ x + 0 = x\n---\nNext tactic:\n---")
    tokenizer = CharTokenizer()
    ids = tokenizer.encode("\nnlinarith [sq_nonneg (a - b)]\n---\nsimp\n---")
    cut = cut_continuation(fmt, ids, tokenizer.decode, 0)
    assert cut == ("nlinarith [sq_nonneg (a - b)]", 0, len("\nnlinarith [sq_nonneg (a - b)]\n---"))


def test_training_targets_end_as_each_model_was_trained():
    assert get_prompt("llemma").target("simp") == "\nsimp\n---"
    assert get_prompt("goal_proofstep").target("simp") == "simp"
    assert get_prompt("bfs_prover").target("simp") == "simp"
    assert get_prompt("internlm_stepprover").target("simp") == "simp<|im_end|>"


def test_every_sample_becomes_a_proposal_best_first():
    samples = [("simp", -3.0, 3), ("ring", -1.0, 2), ("simp", -0.5, 3), ("", -0.1, 1), (" omega ", -2.0, 4)]
    proposals = to_proposals(samples)
    # Nothing merged, stripped or dropped: that is the engine's job, done once for every policy.
    assert proposals == [
        Proposal("", -0.1),
        Proposal("simp", -0.5),
        Proposal("ring", -1.0),
        Proposal(" omega ", -2.0),
        Proposal("simp", -3.0),
    ]


def test_length_normalised_scores_are_the_mean_log_prob_per_token():
    proposals = to_proposals([("simp", -3.0, 3), ("ring", -1.0, 2), ("omega", -2.0, 0)], length_normalise=True)
    # omega's zero token count counts as one token, not a division by zero.
    assert [(p.tactic, p.logprob) for p in proposals] == [("ring", -0.5), ("simp", -1.0), ("omega", -2.0)]


def test_scores_above_zero_are_clipped_to_zero():
    # Float sums of tiny negative log-probs can land a hair above 0; a log-probability cannot.
    (proposal,) = to_proposals([("simp", 1e-9, 2)])
    assert proposal.logprob == 0.0


def test_equal_scores_keep_the_order_the_samples_came_in():
    proposals = to_proposals([("b", -1.0, 1), ("a", -1.0, 1), ("c", -1.0, 1)])
    assert [p.tactic for p in proposals] == ["b", "a", "c"]


def test_no_samples_give_no_proposals():
    assert to_proposals([]) == []


def test_the_engine_merges_a_policys_proposals_into_the_best_k_distinct_tactics():
    proposals = to_proposals(
        [("simp", -3.0, 3), ("ring", -1.0, 2), ("simp", -0.5, 3), ("", -0.1, 1), (" omega ", -2.0, 4), ("  ", -0.2, 2)]
    )
    assert merge_proposals(proposals, k=8) == [Proposal("simp", -0.5), Proposal("ring", -1.0), Proposal("omega", -2.0)]
    assert merge_proposals(proposals, k=2) == [Proposal("simp", -0.5), Proposal("ring", -1.0)]


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"temperature": -0.5}, "--temperature must be at least 0"),
        ({"top_p": 0.0}, "--top-p must be greater than 0"),
        ({"top_p": 1.5}, "--top-p must be at most 1"),
        ({"max_prompt_tokens": 8}, "--max-prompt-tokens must be at least 16"),
        ({"prompt": "lemma"}, "--prompt cannot be 'lemma'; did you mean 'llemma'"),
        ({"decoding": "greedy"}, "--decoding cannot be 'greedy'"),
        ({"temperature": float("nan")}, "--temperature must be a finite number"),
    ],
)
def test_model_policy_settings_out_of_range_are_refused_naming_the_flag(settings, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        ModelPolicyConfig(**settings)
