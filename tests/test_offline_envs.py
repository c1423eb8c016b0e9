import json
import time

import pytest

from search import (
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

from prover.envs.replay import ReplayEnv, TraceFormatError, TraceSet, load_traces
from prover.envs.synthetic import SyntheticConfig, SyntheticEnv
from prover.policies.fixed import FixedPolicy, parse_tactics
from prover.policies.replay import ReplayPolicy


class ScriptPolicy:
    """Proposes exactly the given tactics, at every state, equally scored."""

    def __init__(self, tactics):
        self.tactics = list(dict.fromkeys(tactics))

    def propose(self, states, k):
        return [[Proposal(t, -1.0) for t in self.tactics][:k] for _ in states]


@pytest.fixture(scope="module")
def traces(traces_path):
    return load_traces(str(traces_path))


# ---- replay -------------------------------------------------------------------------------


def test_every_recorded_proof_is_found_by_a_policy_that_proposes_its_tactics(traces):
    checked = 0
    for name, trace in traces.theorems.items():
        for proof in trace.proofs:
            env = ReplayEnv(traces)
            result = best_first_search(
                Theorem(name), ScriptPolicy(proof), env, SearchLimits(max_expansions=50, tactics_per_node=64)
            )
            assert result.status is SearchStatus.PROVED, (name, proof, result.error)
            assert set(result.proof) <= set(proof)
            checked += 1
    # 475 miniF2F steps from several models' proofs, plus the REPL fixtures' paths
    assert checked >= 150


def test_replay_holds_every_theorem_of_the_trace_file(traces, traces_path):
    names = {json.loads(line)["theorem"] for line in traces_path.read_text().splitlines() if line.strip()}
    base_names = {name.split("@")[0] if "@" in name and name.split("@")[-1].isdigit() else name for name in traces.names()}
    assert base_names == names
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
        {"theorem": "t", "state_before": "h : q\n⊢ p", "tactic": "exact h", "state_after": "no goals",
         "proof_finished": True, "step": 1},
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
    assert traces.get("t").proofs == [["intro h", "exact h"]]
    assert env.check_proof(Theorem("t"), ["intro h", "exact h"]) is None
    assert "does not continue" in env.check_proof(Theorem("t"), ["bad"])


def test_replay_policy_mixes_recorded_and_wrong_tactics_and_search_chooses(traces):
    policy = ReplayPolicy(traces, num_wrong=8, seed=0)
    name = "mathd_algebra_478"
    initial = traces.get(name).initial_state
    [proposals] = policy.propose([initial], k=32)
    recorded = traces.tactics_at(initial)
    proposed = {p.tactic for p in proposals}
    assert recorded <= proposed and len(proposed - recorded) >= 4
    assert [p.logprob for p in proposals] == sorted((p.logprob for p in proposals), reverse=True)
    proved = sum(
        best_first_search(Theorem(n), policy, ReplayEnv(traces), SearchLimits(max_expansions=30, tactics_per_node=16)).proved
        for n in traces.names()[:40]
    )
    assert proved >= 30


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
        Theorem("synthetic_0002"), FixedPolicy(), SyntheticEnv(SyntheticConfig(**{**config.__dict__, "seed": 8})), limits
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
    from search import EnvInitError

    with pytest.raises(EnvInitError, match="not a synthetic theorem"):
        SyntheticEnv().start(Theorem("mathd_algebra_478"))
    with pytest.raises(ValueError, match="error_rate"):
        SyntheticConfig(error_rate=1.5)


# ---- fixed policy -------------------------------------------------------------------------


def test_fixed_policy_proposes_its_best_k_for_every_state():
    policy = FixedPolicy(parse_tactics(["ring:-2.0", "simp:-0.5", "omega"]))
    assert policy.propose(["a", "b"], k=2) == [[Proposal("simp", -0.5), Proposal("ring", -2.0)]] * 2
    with pytest.raises(ValueError, match="bad fixed tactic"):
        FixedPolicy([("simp", 0.5)])
