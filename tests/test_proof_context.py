"""The proof context a search gives its policy: the theorem, and the tactics on the path to
each state; InternLM2.5-StepProver's prompt filled with it; batching unchanged."""

from __future__ import annotations

import asyncio

import pytest

from search import (
    ContextualPolicy,
    ProofContext,
    ProofFinished,
    Proposal,
    SearchLimits,
    SearchStatus,
    SearchTree,
    TacticState,
    Theorem,
    best_first_search,
    proof_context,
    propose,
)
from search.tree import ROOT

from prover.policies.prompts import PROMPTS, PromptedPolicy, fit_prompt
from prover.run.serving import BatchingServer

from tests.fakes import GraphEnv, TablePolicy

# InternLM-Math minif2f/proofsearch_internLM2.5-StepProver.py, _prompt_function inside
# chat_template_to_prompt, written out independently of prover.policies.prompts.
INTERNLM_GOLDEN = (
    "<|im_start|>user\n"
    "---\nNAME: {NAME}\n\n"
    "---\nPROOF_BEFORE: {PROOF_BEFORE}\n\n"
    "---\nSTATE_BEFORE: {STATE}\n\n"
    "---\nTACTIC: <|im_end|>\n<|im_start|>assistant\n"
)


def internlm_golden(name: str, proof_before: str, state: str) -> str:
    return INTERNLM_GOLDEN.replace("{NAME}", name).replace("{PROOF_BEFORE}", proof_before).replace("{STATE}", state)


def three_step_env() -> GraphEnv:
    """S0 -(intro x)-> S1 -(cases h)-> S2 -(simp)-> proved."""
    return GraphEnv(
        "S0",
        {
            "S0": {"intro x": TacticState("S1")},
            "S1": {"cases h": TacticState("S2")},
            "S2": {"simp": ProofFinished()},
        },
    )


TABLE = {"S0": [("intro x", -0.1)], "S1": [("cases h", -0.2)], "S2": [("simp", -0.3)]}


class RecordingContextPolicy(TablePolicy):
    """A TablePolicy that reads contexts, and notes each (state, context) it was given."""

    def __init__(self, table):
        super().__init__(table)
        self.seen: list[tuple[str, ProofContext]] = []

    def propose_in_context(self, states, contexts, k):
        self.seen.extend(zip(states, contexts))
        return self.propose(states, k)


class CharTokenizer:
    """One token per character: enough for prompt fitting."""

    def __call__(self, text):
        return {"input_ids": list(range(len(text)))}


class ScriptedPromptedPolicy(PromptedPolicy):
    """A prompted policy whose 'model' answers from a table keyed by the state in the
    prompt, and records every prompt it was given and every call."""

    def __init__(self, prompt: str, table, max_prompt_tokens: int = 4096):
        from prover.policies.prompts import ModelPolicyConfig, get_prompt

        self.config = ModelPolicyConfig(prompt=prompt, max_prompt_tokens=max_prompt_tokens)
        self.format = get_prompt(prompt)
        self.tokenizer = CharTokenizer()
        self.table = table
        self.prompts: list[str] = []
        self.calls: list[int] = []

    def _propose_prompts(self, prompts: list[str], k: int) -> list[list[Proposal]]:
        self.prompts.extend(prompts)
        self.calls.append(len(prompts))
        answers = []
        for prompt in prompts:
            state = next(s for s in self.table if ("STATE_BEFORE: " + s + "\n") in prompt)
            answers.append([Proposal(t, lp) for t, lp in self.table[state]][:k])
        return answers


def test_the_path_of_a_state_is_the_tactics_of_its_best_scoring_path():
    tree = SearchTree("t", "A")
    b, _ = tree.add_outcome(ROOT, "to b", -1.0, TacticState("B"))
    c, _ = tree.add_outcome(ROOT, "to c", -0.1, TacticState("C"))
    tree.mark_expanded(ROOT)
    d, _ = tree.add_outcome(b, "b to d", -0.1, TacticState("D"))
    tree.mark_expanded(b)
    tree.add_outcome(c, "c to d", -0.2, TacticState("D"))  # a better path to D: -0.3 < -1.1
    tree.mark_expanded(c)
    assert tree.path_tactics(ROOT) == []
    assert tree.path_tactics(b) == ["to b"]
    assert tree.path_tactics(d) == ["to c", "c to d"]
    assert len(tree.path_tactics(d)) == tree.node(d)["depth"]


def test_a_policy_that_reads_contexts_gets_the_theorem_and_the_path_to_each_state():
    policy = RecordingContextPolicy(TABLE)
    assert isinstance(policy, ContextualPolicy)
    theorem = Theorem("thm", statement="theorem thm : True :=", full_name="Mathlib.thm")
    result = best_first_search(theorem, policy, three_step_env(), SearchLimits(max_expansions=10))
    assert result.status is SearchStatus.PROVED
    assert [(state, context.tactics) for state, context in policy.seen] == [
        ("S0", ()),
        ("S1", ("intro x",)),
        ("S2", ("intro x", "cases h")),
    ]
    assert {(c.theorem_name, c.theorem_statement) for _, c in policy.seen} == {("Mathlib.thm", "theorem thm : True :=")}


def test_a_policy_without_propose_in_context_is_asked_as_before():
    policy = TablePolicy(TABLE)
    assert not isinstance(policy, ContextualPolicy)
    result = best_first_search(Theorem("thm"), policy, three_step_env(), SearchLimits(max_expansions=10))
    assert result.status is SearchStatus.PROVED and policy.calls == ["S0", "S1", "S2"]
    context = ProofContext("thm", "", ("a",))
    assert propose(policy, ["S0"], [context], 4) == [[Proposal("intro x", -0.1)]]


def test_an_internlm_prompt_two_steps_deep_holds_the_theorems_name_and_both_earlier_tactics():
    policy = ScriptedPromptedPolicy("internlm_stepprover", TABLE)
    theorem = Theorem("mathd_algebra_478", full_name="mathd_algebra_478")
    result = best_first_search(theorem, policy, three_step_env(), SearchLimits(max_expansions=10))
    assert result.status is SearchStatus.PROVED
    assert policy.prompts == [
        internlm_golden("mathd_algebra_478", "", "S0"),
        internlm_golden("mathd_algebra_478", "intro x", "S1"),
        internlm_golden("mathd_algebra_478", "intro x\ncases h", "S2"),  # "\n".join(steps), as the script
    ]


def test_formats_without_context_render_the_same_prompt_with_or_without_one():
    context = ProofContext("thm", "theorem thm : True :=", ("intro x", "simp"))
    for name, fmt in PROMPTS.items():
        if name != "internlm_stepprover":
            assert not fmt.uses_context
            assert fmt.render("⊢ True", context) == fmt.render("⊢ True")
    internlm = PROMPTS["internlm_stepprover"]
    assert internlm.uses_context
    assert internlm.render("⊢ True") == internlm_golden("", "", "⊢ True")  # no context: both left empty


def test_a_long_proof_so_far_loses_its_oldest_tactics_before_the_state_loses_a_line():
    fmt = PROMPTS["internlm_stepprover"]
    state = "h : x = 1\n⊢ x + 0 = 1"
    context = ProofContext("thm", "", tuple(f"tactic_{i}" for i in range(40)))
    count = len
    budget = count(fmt.render(state, ProofContext("thm", "", context.tactics[-3:])))
    prompt = fit_prompt(fmt, state, count, budget, context)
    assert prompt == fmt.render(state, ProofContext("thm", "", context.tactics[-3:]))
    # With no room for any tactic, the state is cut next, from the top.
    tight = count(fmt.render("⊢ x + 0 = 1", ProofContext("thm")))
    assert fit_prompt(fmt, state, count, tight, context) == fmt.render("⊢ x + 0 = 1", ProofContext("thm"))


def test_two_states_of_one_search_still_share_a_model_call():
    policy = ScriptedPromptedPolicy("internlm_stepprover", TABLE)
    contexts = [ProofContext("thm", "", ("intro x",)), ProofContext("thm", "", ("intro x", "cases h"))]
    answers = policy.propose_in_context(["S1", "S2"], contexts, 4)
    assert policy.calls == [2]  # one batch, both prompts
    assert [[p.tactic for p in a] for a in answers] == [["cases h"], ["simp"]]


def test_the_batching_server_joins_contextual_calls_of_one_search_into_one_batch():
    policy = ScriptedPromptedPolicy("internlm_stepprover", TABLE)
    server = BatchingServer(max_batch_size=8, max_wait_ms=50, target=policy)
    theorem = Theorem("thm")
    tree = SearchTree("thm", "S0")
    s1, _ = tree.add_outcome(ROOT, "intro x", -0.1, TacticState("S1"))
    s3, _ = tree.add_outcome(ROOT, "cases h", -0.2, TacticState("S2"))
    tree.mark_expanded(ROOT)

    async def both():
        return await asyncio.gather(
            server.propose_in_context(["S1"], [proof_context(theorem, tree, s1)], 4),
            server.propose_in_context(["S2"], [proof_context(theorem, tree, s3)], 4),
        )

    first, second = asyncio.run(both())
    assert policy.calls == [2] and server.stats.num_batches == 1
    assert server.stats.to_dict()["states_by_method"] == {"propose": 2}
    assert [p.tactic for p in first[0]] == ["cases h"] and [p.tactic for p in second[0]] == ["simp"]
    assert policy.prompts == [internlm_golden("thm", "intro x", "S1"), internlm_golden("thm", "cases h", "S2")]


def test_the_batching_server_asks_a_policy_that_ignores_contexts_for_plain_proposals():
    policy = TablePolicy(TABLE)
    server = BatchingServer(max_batch_size=8, max_wait_ms=5, target=policy)
    (answer,) = asyncio.run(server.propose_in_context(["S1"], [ProofContext("thm")], 4))
    assert [p.tactic for p in answer] == ["cases h"] and policy.calls == ["S1"]


@pytest.mark.slow
def test_the_hf_policy_renders_contexts_and_generates_two_states_in_one_call(tmp_path_factory, monkeypatch):
    from prover.policies.hf import HFConfig, HFPolicy, load_model

    from tests.tiny_llama import STATES, session_tiny_llama

    model, tokenizer = load_model(str(session_tiny_llama(tmp_path_factory)), "cpu")
    policy = HFPolicy(model, tokenizer, HFConfig(prompt="internlm_stepprover", max_new_tokens=4))
    calls = []
    generate = model.generate
    monkeypatch.setattr(model, "generate", lambda **kw: calls.append(kw["input_ids"].shape[0]) or generate(**kw))
    contexts = [ProofContext("thm", "", ("intro x",)), ProofContext("thm", "", ("intro x", "simp"))]
    answers = policy.propose_in_context(list(STATES[:2]), contexts, 2)
    assert len(answers) == 2 and all(len(a) == 2 for a in answers)
    assert len(calls) == 1  # both states in one generate call
    assert "PROOF_BEFORE: intro x\nsimp\n\n" in policy.render(STATES[1], contexts[1])
