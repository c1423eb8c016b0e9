"""What the model policies share, without a model: samples become proposals
(``to_proposals``), and the engine, not the policy, merges them (``merge_proposals``)."""

from __future__ import annotations

import pytest

from search import Proposal, merge_proposals

from prover.config import ConfigError
from prover.policies.prompts import ModelPolicyConfig, to_proposals


def test_every_sample_becomes_a_proposal_best_first():
    samples = [("simp", -3.0, 3), ("ring", -1.0, 2), ("simp", -0.5, 3), ("", -0.1, 1), (" omega ", -2.0, 4)]
    proposals = to_proposals(samples)
    # Nothing merged, stripped or dropped: that is the engine's job, done once for every policy.
    assert proposals == [Proposal("", -0.1), Proposal("simp", -0.5), Proposal("ring", -1.0),
                         Proposal(" omega ", -2.0), Proposal("simp", -3.0)]


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
    proposals = to_proposals([("simp", -3.0, 3), ("ring", -1.0, 2), ("simp", -0.5, 3), ("", -0.1, 1),
                              (" omega ", -2.0, 4), ("  ", -0.2, 2)])
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
