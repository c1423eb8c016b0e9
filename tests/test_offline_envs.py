"""The offline environments (replay of recorded Lean interactions, synthetic problems), the
trace format, and the model-free policies, driven through the real engine."""

import json
import time
from collections import defaultdict

import pytest

from search import (
    EdgeOutcome,
    EnvInitError,
    LeanError,
    ProofFinished,
    ProofGivenUp,
    Proposal,
    SearchLimits,
    SearchStatus,
    TacticState,
    Theorem,
    best_first_search,
)

from prover.config import BackendSpec, TheoremSetConfig
from prover.data import repl_fixtures_path
from prover.envs.replay import ReplayEnv
from prover.envs.synthetic import SyntheticConfig, SyntheticEnv
from prover.policies.fixed import FixedPolicy, parse_tactics
from prover.policies.replay import ReplayPolicy
from prover.settings import ConfigError
from prover.theorem_sets import load_theorems, minif2f
from prover.traces import TraceFormatError, TraceSet, load_traces


class ScriptPolicy:
    """Proposes exactly the given tactics, at every state, equally scored."""

    def __init__(self, tactics):
        self.tactics = list(tactics)

    def propose(self, states, k):
        return [[Proposal(t, -1.0) for t in self.tactics] for _ in states]


@pytest.fixture(scope="module")
def traces(traces_path):
    return load_traces(str(traces_path))


@pytest.fixture(scope="module")
def records(traces_path):
    return [json.loads(line) for line in traces_path.read_text(encoding="utf-8").splitlines() if line.strip()]


def recorded_proofs(records) -> list[tuple[str, str, list[str]]]:
    """(theorem, initial goal, tactics) of every complete recorded proof: the records of one
    theorem from one model and source whose ``step`` numbers run 0, 1, ... without a gap,
    with no error, the last one finishing the proof."""
    runs = defaultdict(list)
    for record in records:
        runs[(record["theorem"], record.get("model"), record.get("source"))].append(record)
    proofs = []
    for (theorem, _, _), run in runs.items():
        run.sort(key=lambda r: r["step"])
        if [r["step"] for r in run] != list(range(len(run))):
            continue
        if run[-1].get("proof_finished") and not any(r.get("error") for r in run):
            proofs.append((theorem, run[0]["state_before"], [r["tactic"].strip() for r in run]))
    return proofs


def base_name(replay_name: str) -> str:
    """The recorded theorem of a replay theorem: ``name@2`` (its second initial goal) -> ``name``."""
    name, at, number = replay_name.rpartition("@")
    return name if at and number.isdigit() else replay_name


def replay_variant(traces, theorem: str, initial: str) -> str:
    """The replay theorem (``name`` or ``name@k``) whose initial goal is ``initial``."""
    return next(n for n, t in traces.theorems.items() if base_name(n) == theorem and t.initial_state == initial)


# ---- replay -------------------------------------------------------------------------------


def test_every_recorded_proof_replays_to_a_finished_proof(traces, records):
    proofs = recorded_proofs(records)
    assert len(proofs) >= 250  # several models' LeanDojo searches on miniF2F: 283 proofs, most of one step
    assert sum(len(tactics) > 1 for _, _, tactics in proofs) >= 90
    finishing = {(r["state_before"], r["tactic"].strip()) for r in records if r.get("proof_finished")}
    for theorem, initial, tactics in proofs:
        env = ReplayEnv(traces)
        state = env.start(Theorem(replay_variant(traces, theorem, initial)))
        assert state.pp == initial
        for step, tactic in enumerate(tactics):
            outcome = env.run_tactic(state, tactic)
            if isinstance(outcome, ProofFinished):
                break
            assert isinstance(outcome, TacticState), (theorem, tactics, step, outcome)
            state = outcome
        assert isinstance(outcome, ProofFinished), (theorem, tactics)
        if step < len(tactics) - 1:
            # Finished early: the runs disagree, another one recorded this tactic closing the
            # goal here, and replay keeps the outcome that gets furthest (see prover.traces).
            assert (state.pp, tactic) in finishing, (theorem, tactics, step)


def test_every_recorded_proof_is_found_by_a_policy_that_proposes_its_tactics(traces, records):
    for theorem, initial, tactics in recorded_proofs(records):
        name = replay_variant(traces, theorem, initial)
        result = best_first_search(
            Theorem(name),
            ScriptPolicy(tactics),
            ReplayEnv(traces),
            SearchLimits(max_expansions=50, tactics_per_node=64),
        )
        assert result.status is SearchStatus.PROVED, (name, tactics, result.error)
        assert set(result.proof) <= set(tactics)


def test_every_replay_theorem_is_a_minif2f_theorem(traces):
    """The shipped replay benchmark holds miniF2F problems only: the Lean REPL's test
    fixtures (``example : 1 = 0 := sorry`` and the like) ship apart, for tests."""
    replay = BackendSpec.default("environment", "replay")
    theorems = load_theorems(TheoremSetConfig(theorem_set="replay"), replay)
    assert len(theorems) == len(traces.names()) >= 90
    minif2f_names = {t.name for t in minif2f("valid") + minif2f("test")}
    assert [t.name for t in theorems if base_name(t.name) not in minif2f_names] == []
    fixtures = {
        json.loads(line)["theorem"]
        for line in repl_fixtures_path().read_text(encoding="utf-8").splitlines()
        if line.strip()
    }
    assert fixtures and not fixtures & {base_name(t.name) for t in theorems}


def test_replay_holds_every_theorem_of_the_trace_file(traces, traces_path):
    names = {json.loads(line)["theorem"] for line in traces_path.read_text().splitlines() if line.strip()}
    assert {base_name(name) for name in traces.names()} == names
    # theorems recorded under different Lean versions have several initial goals
    assert any(name.endswith("@2") for name in traces.names())


def test_an_unrecorded_tactic_is_a_lean_error_that_says_so(traces):
    env = ReplayEnv(traces)
    state = env.start(Theorem("mathd_algebra_478"))
    outcome = env.run_tactic(state, "exact foo_bar_baz")
    assert isinstance(outcome, LeanError)
    assert "never recorded" in outcome.error


def test_replay_answers_as_lean_did():
    records = [
        {"theorem": "t", "state_before": "⊢ p", "tactic": "intro h", "state_after": "h : q\n⊢ p", "step": 0},
        {
            "theorem": "t",
            "state_before": "h : q\n⊢ p",
            "tactic": "exact h",
            "state_after": "no goals",
            "proof_finished": True,
            "step": 1,
        },
        {"theorem": "t", "state_before": "⊢ p", "tactic": "bad", "error": "unknown identifier"},
        {"theorem": "t", "state_before": "⊢ p", "tactic": "sorry", "state_after": "no goals", "proof_finished": False},
    ]
    traces = TraceSet.from_records(records)
    env = ReplayEnv(traces)
    state = env.start(Theorem("t"))
    assert state == TacticState("⊢ p")
    assert env.run_tactic(state, "intro h") == TacticState("h : q\n⊢ p")
    assert env.run_tactic(TacticState("h : q\n⊢ p"), "exact h") == ProofFinished()
    assert env.run_tactic(state, "bad") == LeanError("unknown identifier")
    assert env.run_tactic(state, "sorry") == ProofGivenUp()
    assert env.check_proof(Theorem("t"), ["intro h", "exact h"]) is None
    assert "does not continue" in env.check_proof(Theorem("t"), ["bad"])


def test_replay_policy_ranks_wrong_tactics_among_recorded_ones_and_search_rejects_them(traces):
    # Which tactics the policy proposes, and that every replay theorem is proved with it,
    # is pinned in test_replay_policy.py; here the search has to get past the wrong ones.
    policy = ReplayPolicy(traces, seed=0)
    name = "mathd_algebra_478"
    initial = traces.get(name).initial_state
    [proposals] = policy.propose([initial], k=16)
    is_recorded = [p.tactic in traces.tactics_at(initial) for p in proposals]
    assert sum(is_recorded) == len(traces.tactics_at(initial)) and not is_recorded[0]  # a wrong one ranks first
    result = best_first_search(
        Theorem(name), policy, ReplayEnv(traces), SearchLimits(max_expansions=30, tactics_per_node=16)
    )
    assert result.status is SearchStatus.PROVED
    outcomes = [edge["outcome"] for _, _, edge in result.tree.graph.edges(data=True)]
    assert outcomes.count(EdgeOutcome.ERROR) == is_recorded.index(True)  # every wrong one tried first failed
    assert outcomes.count(EdgeOutcome.PROVED) == 1 and len(outcomes) == is_recorded.index(True) + 1


@pytest.mark.parametrize(
    "content, message",
    [
        ("not json\n", "line 1 .* not valid JSON"),
        ('{"theorem": "t", "state_before": "s"}\n', "lacks tactic"),
        ("[1]\n", "not a JSON object"),
        ("\n", "holds no records"),
    ],
)
def test_a_malformed_trace_file_is_refused_with_the_line(tmp_path, content, message):
    path = tmp_path / "traces.jsonl"
    path.write_text(content)
    with pytest.raises(TraceFormatError, match=message):
        TraceSet.load(path)


def test_a_missing_trace_file_is_refused(tmp_path):
    with pytest.raises(TraceFormatError, match="does not exist"):
        TraceSet.load(tmp_path / "nope.jsonl")


# ---- synthetic ----------------------------------------------------------------------------


def _edges(result):
    return sorted((s, t, k, d["outcome"], d["logprob"]) for s, t, k, d in result.tree.graph.edges(keys=True, data=True))


def test_synthetic_env_is_deterministic_for_a_seed():
    config = SyntheticConfig(branching=3, depth=4, proof_density=0.4, error_rate=0.3, seed=7)
    limits = SearchLimits(max_expansions=40)
    runs = [best_first_search(Theorem("synthetic_0002"), FixedPolicy(), SyntheticEnv(config), limits) for _ in range(2)]
    assert _edges(runs[0]) == _edges(runs[1])
    assert runs[0].status == runs[1].status and runs[0].proof == runs[1].proof
    other = best_first_search(
        Theorem("synthetic_0002"),
        FixedPolicy(),
        SyntheticEnv(SyntheticConfig(**{**config.__dict__, "seed": 8})),
        limits,
    )
    assert _edges(other) != _edges(runs[0])


def test_synthetic_env_respects_branching_and_error_rate():
    env = SyntheticEnv(SyntheticConfig(branching=3, depth=10, error_rate=0.0))
    state = env.start(Theorem("synthetic_0000"))
    children = {env.run_tactic(state, f"tactic_{i}") for i in range(60)}
    assert len(children) == 3 and all(isinstance(c, TacticState) for c in children)
    env = SyntheticEnv(SyntheticConfig(error_rate=1.0))
    state = env.start(Theorem("synthetic_0000"))
    assert all(isinstance(env.run_tactic(state, f"t{i}"), LeanError) for i in range(20))


def test_synthetic_proof_length_is_the_depth():
    env = SyntheticEnv(SyntheticConfig(branching=1, depth=3, error_rate=0.0))
    result = best_first_search(Theorem("synthetic_0005"), FixedPolicy([("simp", -0.1)]), env)
    assert result.proof == ["simp", "simp", "simp"]
    assert env.check_proof(Theorem("synthetic_0005"), ["simp"] * 3) is None
    assert env.check_proof(Theorem("synthetic_0005"), ["simp"] * 2) == "the tactics leave goals open"


def test_synthetic_latency_is_spent_per_tactic():
    env = SyntheticEnv(SyntheticConfig(latency_s=0.02))
    state = env.start(Theorem("synthetic_0000"))
    started = time.perf_counter()
    for i in range(5):
        env.run_tactic(state, f"t{i}")
    assert time.perf_counter() - started >= 0.1


def test_synthetic_env_refuses_other_theorems_and_bad_settings():
    with pytest.raises(EnvInitError, match="not a synthetic theorem"):
        SyntheticEnv().start(Theorem("mathd_algebra_478"))
    with pytest.raises(ConfigError, match="--error-rate must be at most 1, not 1.5"):
        SyntheticConfig(error_rate=1.5)
    with pytest.raises(ConfigError, match="--branching must be at least 1"):
        SyntheticConfig(branching=0)


# ---- fixed policy -------------------------------------------------------------------------


def test_fixed_policy_proposes_its_best_k_for_every_state():
    policy = FixedPolicy(parse_tactics(["ring:-2.0", "simp:-0.5", "omega"]))
    assert policy.propose(["a", "b"], k=2) == [[Proposal("simp", -0.5), Proposal("ring", -2.0)]] * 2
    with pytest.raises(ValueError, match="bad fixed tactic"):
        FixedPolicy([("simp", 0.5)])
