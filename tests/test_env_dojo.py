"""The LeanDojo backend's session logic against a fake Dojo that answers with LeanDojo's real
result and error classes: outcome mapping, restart and replay after timeouts and crashes,
init failures counted in the pass rate, processes always cleaned up, the from-scratch
re-check, theorem addressing, the Lean project and ``prover setup-lean``'s steps. What
happens below LeanDojo's Python API (Lean processes, tracing, the cache, compiling) is
tested against the stand-in toolchain in ``tests/test_dojo_*.py``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

lean_dojo = pytest.importorskip("lean_dojo")

from search import (
    EnvCrashError,
    EnvInitError,
    EnvTimeoutError,
    LeanError,
    ProofFinished,
    ProofGivenUp,
    SearchLimits,
    SearchStatus,
    TacticState,
    Theorem,
    best_first_search,
    proof_text,
)
from search.tree import EdgeOutcome

from prover.envs.dojo import DojoConfig, DojoEnv, axioms_problem, build
from prover.envs.lean import ELAN_URL, MINIF2F_COMMIT, MINIF2F_URL, minif2f_checkout, setup_lean_project
from prover.envs.safety import GuardedEnv
from prover.errors import MissingDependencyError, ProverError
from prover.run.rundir import Summary
from prover.settings import REPO_ROOT
from prover.theorem_sets import MINIF2F_REPO_URL, minif2f

from tests.fakes import TablePolicy

ROOT = "x : ℕ\nh : 0 < x\n⊢ x + 0 = x ∧ 0 < x"
LEFT = "x : ℕ\nh : 0 < x\n⊢ x + 0 = x\n\nx : ℕ\nh : 0 < x\n⊢ 0 < x"
RIGHT = "x : ℕ\nh : 0 < x\n⊢ 0 < x"
DONE = "done"
THEOREM = Theorem("t", repo_url="https://github.com/o/r", commit="c" * 40, file_path="R/T.lean")


class FakeLean:
    """Scripted Lean behind a fake ``Dojo`` factory. ``table[pp][tactic]`` is a state pp,
    ``DONE``, or a LeanDojo result object; ``faults[tactic]`` is a list of exceptions to
    raise on its next runs. As in LeanDojo issue #218, once a tactic of a session timed
    out, every later tactic of that session times out too."""

    def __init__(self, table, faults=None, init_error=None):
        self.table = table
        self.faults = {k: list(v) for k, v in (faults or {}).items()}
        self.init_error = init_error
        self.sessions: list[FakeDojo] = []
        self.theorems: list = []
        self.timeouts: list[int] = []

    def __call__(self, theorem, timeout, build_deps):
        self.theorems.append(theorem)
        self.timeouts.append(timeout)
        session = FakeDojo(self, len(self.sessions))
        self.sessions.append(session)
        return session

    @property
    def open_sessions(self) -> int:
        return sum(s.entered and not s.exited for s in self.sessions)


class FakeDojo:
    def __init__(self, lean: FakeLean, number: int):
        self.lean, self.number = lean, number
        self.entered = self.exited = self.poisoned = False
        self.ran: list[str] = []
        self.ids: dict[int, str] = {}

    def _state(self, pp: str):
        sid = self.number * 1000 + len(self.ids)
        self.ids[sid] = pp
        return lean_dojo.TacticState(pp, sid, message=None)

    def __enter__(self):
        if self.lean.init_error is not None:
            raise self.lean.init_error
        self.entered = True
        return self, self._state(ROOT)

    def __exit__(self, *exc):
        self.exited = True

    def run_tac(self, state, tactic):
        assert not self.exited, "a tactic was sent to a closed session"
        assert self.ids.get(state.id) == state.pp, "a state of another session was used"
        self.ran.append(tactic)
        if self.poisoned:
            raise lean_dojo.DojoTacticTimeoutError()
        pending = self.lean.faults.get(tactic)
        if pending:
            fault = pending.pop(0)
            if isinstance(fault, lean_dojo.DojoTacticTimeoutError):
                self.poisoned = True
            raise fault
        answer = self.lean.table.get(state.pp, {}).get(tactic, lean_dojo.LeanError(f"unknown tactic {tactic}"))
        if answer == DONE:
            return lean_dojo.ProofFinished(self.number * 1000 + 999, message=None)
        if isinstance(answer, str):
            return self._state(answer)
        return answer


def two_goal_table():
    return {
        ROOT: {"constructor": LEFT, "simp": lean_dojo.LeanError("simp made no progress")},
        LEFT: {"simp": RIGHT, "slow": RIGHT, "omega": RIGHT},
        RIGHT: {"exact h": DONE, "give_up": lean_dojo.ProofGivenUp()},
    }


def make_env(lean: FakeLean, checker=None, **kwargs) -> DojoEnv:
    return DojoEnv(
        tactic_timeout_s=5,
        dojo_factory=lean,
        repo_factory=lambda url, commit: lean_dojo_repo_stub(url, commit),
        proof_checker=checker,
        **kwargs,
    )


class lean_dojo_repo_stub:
    """Stands in for LeanGitRepo, which would query GitHub."""

    def __init__(self, url, commit):
        self.url, self.commit = url, commit


# -- outcome mapping -----------------------------------------------------------------------


def test_each_lean_dojo_result_maps_to_the_engine_outcome():
    lean = FakeLean(two_goal_table())
    env = make_env(lean)
    root = env.start(THEOREM)
    assert root == TacticState(ROOT)
    left = env.run_tactic(root, "constructor")
    assert left == TacticState(LEFT)
    assert env.run_tactic(root, "simp") == LeanError("simp made no progress")
    right = env.run_tactic(left, "simp")
    assert env.run_tactic(right, "exact h") == ProofFinished(999)
    assert env.run_tactic(right, "give_up") == ProofGivenUp()
    env.close()


def test_a_state_of_another_theorem_is_a_lean_error_not_a_crash():
    env = make_env(FakeLean(two_goal_table()))
    env.start(THEOREM)
    assert isinstance(env.run_tactic(TacticState("⊢ False"), "simp"), LeanError)


def test_dojo_is_entered_with_the_startup_timeout_and_the_theorem_addressed_for_lean_dojo():
    lean = FakeLean(two_goal_table())
    env = DojoEnv(
        tactic_timeout_s=2.5,
        startup_timeout_s=120,
        dojo_factory=lean,
        repo_factory=lean_dojo_repo_stub,
        proof_checker=None,
    )
    env.start(
        Theorem(
            "imo_2006_p3",
            repo_url=MINIF2F_REPO_URL,
            commit=MINIF2F_COMMIT,
            file_path="MiniF2F/Valid.lean",
            full_name="imo_2006_p6",
        )
    )
    theorem = lean.theorems[0]
    assert isinstance(theorem, lean_dojo.Theorem)
    assert (theorem.repo.url, theorem.repo.commit) == (MINIF2F_REPO_URL, MINIF2F_COMMIT)
    assert theorem.file_path == Path("MiniF2F/Valid.lean") and theorem.full_name == "imo_2006_p6"
    assert lean.timeouts == [120]
    env.close()


def test_a_theorem_without_a_repository_is_an_init_error_pointing_at_repl():
    env = make_env(FakeLean(two_goal_table()))
    with pytest.raises(EnvInitError, match="--env repl"):
        env.start(Theorem("typed", statement="theorem typed : 1 = 1 :="))
    assert "--env repl" in env.check_proof(Theorem("typed", statement="theorem typed : 1 = 1 :="), ["rfl"])


# -- restarts --------------------------------------------------------------------------------


def test_timeout_restarts_the_session_and_replays_the_path_in_order():
    lean = FakeLean(two_goal_table(), faults={"slow": [lean_dojo.DojoTacticTimeoutError()]})
    env = make_env(lean)
    root = env.start(THEOREM)
    left = env.run_tactic(root, "constructor")
    with pytest.raises(EnvTimeoutError, match="restarted"):
        env.run_tactic(left, "slow")
    assert len(lean.sessions) == 2 and lean.sessions[0].exited
    assert lean.sessions[1].ran == ["constructor"]  # the path to the node, replayed
    # the old session would time out on everything (#218); the new one goes on
    right = env.run_tactic(left, "simp")
    assert right.pp == RIGHT
    assert env.run_tactic(right, "exact h") == ProofFinished(1999)
    assert lean.sessions[1].ran == ["constructor", "simp", "exact h"]
    assert env.num_restarts == 1
    env.close()
    assert lean.open_sessions == 0


def test_states_found_before_a_restart_are_replayed_when_next_used():
    lean = FakeLean(two_goal_table(), faults={"slow": [lean_dojo.DojoTacticTimeoutError()]})
    env = make_env(lean)
    root = env.start(THEOREM)
    left = env.run_tactic(root, "constructor")
    right = env.run_tactic(left, "simp")
    with pytest.raises(EnvTimeoutError):
        env.run_tactic(left, "slow")
    assert env.run_tactic(right, "exact h") == ProofFinished(1999)
    assert lean.sessions[1].ran == ["constructor", "simp", "exact h"]


def test_search_goes_on_after_a_timeout_and_marks_the_edge_timed_out():
    lean = FakeLean(two_goal_table(), faults={"slow": [lean_dojo.DojoTacticTimeoutError()]})
    policy = TablePolicy(
        {ROOT: [("constructor", -0.1)], LEFT: [("slow", -0.1), ("simp", -0.5)], RIGHT: [("exact h", -0.1)]}
    )
    result = best_first_search(THEOREM, policy, make_env(lean), SearchLimits(max_expansions=10))
    assert result.status is SearchStatus.PROVED
    assert result.proof == ["constructor", "simp", "exact h"]
    timed_out = [e["tactic"] for _, _, e in result.tree.graph.edges(data=True) if e["outcome"] == EdgeOutcome.TIMEOUT]
    assert timed_out == ["slow"]
    assert lean.open_sessions == 0


def test_crash_mid_search_is_retried_after_restart_and_the_search_continues():
    lean = FakeLean(two_goal_table(), faults={"simp": [lean_dojo.DojoCrashError("Unexpected EOF")]})
    policy = TablePolicy({ROOT: [("constructor", -0.1)], LEFT: [("simp", -0.1)], RIGHT: [("exact h", -0.1)]})
    env = make_env(lean, max_crash_retries=2)
    result = best_first_search(THEOREM, policy, env, SearchLimits(max_expansions=10))
    assert result.status is SearchStatus.PROVED
    assert env.num_restarts == 1
    assert lean.sessions[1].ran[:2] == ["constructor", "simp"]  # replay, then the retried tactic
    assert lean.open_sessions == 0


def test_repeated_crashes_end_the_search_as_error_with_the_tree_kept():
    crashes = [lean_dojo.DojoCrashError("OOM") for _ in range(5)]
    lean = FakeLean(two_goal_table(), faults={"omega": crashes})
    policy = TablePolicy({ROOT: [("constructor", -0.1)], LEFT: [("omega", -0.1), ("simp", -0.2)]})
    env = make_env(lean, max_crash_retries=2)
    result = best_first_search(THEOREM, policy, env, SearchLimits(max_expansions=10))
    assert result.status is SearchStatus.ERROR
    assert "crashed 3 times" in result.error
    assert result.tree is not None and result.tree.num_states >= 2  # root and LEFT survive
    assert len(lean.sessions) == 3  # the first and two restarts
    assert lean.open_sessions == 0


def test_a_failed_restart_is_a_crash_and_leaves_no_process():
    lean = FakeLean(two_goal_table(), faults={"slow": [lean_dojo.DojoTacticTimeoutError()]})
    env = make_env(lean)
    root = env.start(THEOREM)
    left = env.run_tactic(root, "constructor")
    lean.init_error = lean_dojo.DojoInitError("Unexpected EOF")
    with pytest.raises(EnvCrashError, match="could not be restarted"):
        env.run_tactic(left, "slow")
    assert lean.open_sessions == 0


# -- init failures ------------------------------------------------------------------------------


def test_init_failure_is_an_error_record_counted_in_the_pass_rate():
    policy = TablePolicy({ROOT: [("constructor", -0.1)], LEFT: [("simp", -0.1)], RIGHT: [("exact h", -0.1)]})
    good = make_env(FakeLean(two_goal_table()))
    bad = make_env(FakeLean(two_goal_table(), init_error=lean_dojo.DojoInitError("Cannot find the *.ast.json")))
    results = [
        best_first_search(THEOREM, policy, good, SearchLimits(max_expansions=10)),
        best_first_search(
            Theorem("u", repo_url="https://github.com/o/r", commit="c" * 40, file_path="R/U.lean"),
            policy,
            bad,
            SearchLimits(max_expansions=10),
        ),
    ]
    assert [r.status for r in results] == [SearchStatus.PROVED, SearchStatus.ERROR]
    assert "could not start" in results[1].error and "ast.json" in results[1].error
    summary = Summary.of(["t", "u"], [r.to_record() for r in results]).to_json()
    assert summary["num_theorems"] == 2 and summary["num_proved"] == 1
    assert summary["pass_rate"] == 0.5 and summary["status_counts"] == {"proved": 1, "error": 1}


def test_start_maps_dojo_init_error_to_env_init_error_and_cleans_up():
    lean = FakeLean({}, init_error=lean_dojo.DojoInitError("no such theorem"))
    with pytest.raises(EnvInitError, match="no such theorem"):
        make_env(lean).start(THEOREM)
    assert lean.sessions[0].exited  # a half-started Lean process is killed too


def test_unreachable_repository_is_an_init_error():
    def unreachable(url, commit):
        raise ValueError(f"{url} is not a valid URL")

    env = DojoEnv(dojo_factory=FakeLean({}), repo_factory=unreachable, proof_checker=None)
    with pytest.raises(EnvInitError, match="cannot address"):
        env.start(Theorem("v", repo_url="https://example.invalid/x", commit="d" * 40, file_path="X.lean"))


# -- clean-up and the re-check -----------------------------------------------------------------------


def test_close_exits_every_dojo_context_and_may_be_called_twice():
    lean = FakeLean(two_goal_table())
    env = make_env(lean)
    env.start(THEOREM)
    env.start(THEOREM)  # a new start closes the previous session
    assert lean.sessions[0].exited and not lean.sessions[1].exited
    env.close()
    env.close()
    assert lean.open_sessions == 0


def test_check_proof_compiles_the_whole_file_and_starts_no_session_to_replay():
    calls = []
    lean = FakeLean(two_goal_table())
    env = make_env(lean, checker=lambda theorem, proof: calls.append((theorem.full_name, proof)))
    root = env.start(THEOREM)
    env.run_tactic(root, "constructor")
    assert env.check_proof(THEOREM, ["constructor", "simp", "exact h"]) is None
    assert len(lean.sessions) == 1 and lean.open_sessions == 0  # the search's session ended, no other started
    assert calls == [("t", " by\n  constructor\n  simp\n  exact h")]
    assert "Lean.ofReduceBool" in make_env(
        lean, checker=lambda theorem, proof: "the proof depends on the axiom Lean.ofReduceBool"
    ).check_proof(THEOREM, ["constructor"])


def test_without_a_file_check_the_recheck_replays_in_a_fresh_session_and_says_why_a_proof_fails():
    lean = FakeLean(two_goal_table())
    env = make_env(lean, checker=None)
    assert env.check_proof(THEOREM, ["constructor", "simp", "exact h"]) is None
    assert "leave goals open" in env.check_proof(THEOREM, ["constructor"])
    assert "simp made no progress" in env.check_proof(THEOREM, ["simp"])
    assert "finished early" in env.check_proof(THEOREM, ["constructor", "simp", "exact h", "rfl"])
    # Each re-check starts its own session, which ends the one before.
    assert len(lean.sessions) == 4
    env.close()
    assert lean.open_sessions == 0


def test_a_recheck_whose_lean_times_out_is_run_again_from_scratch():
    lean = FakeLean(two_goal_table(), faults={"simp": [lean_dojo.DojoTacticTimeoutError()]})
    env = make_env(lean, checker=None)
    assert env.check_proof(THEOREM, ["constructor", "simp", "exact h"]) is None
    assert [session.ran[:2] for session in lean.sessions[-1:]] == [["constructor", "simp"]]


def test_a_recheck_whose_lean_keeps_failing_says_so():
    crashes = [lean_dojo.DojoCrashError("OOM") for _ in range(20)]
    env = make_env(FakeLean(two_goal_table(), faults={"simp": crashes}), checker=None)
    assert "failed 3 times" in env.check_proof(THEOREM, ["constructor", "simp", "exact h"])


def test_print_axioms_output_is_read_for_the_theorem_alone():
    standard = "'t' depends on axioms: [propext, Classical.choice, Quot.sound]"
    assert axioms_problem(standard, "t") is None
    assert axioms_problem("'t' does not depend on any axioms", "t") is None
    native = "'other' depends on axioms: [sorryAx]\n't' depends on axioms: [propext, Classical.choice,\n Lean.ofReduceBool, Quot.sound]"
    assert axioms_problem(native, "t") == (
        "the proof depends on the axiom Lean.ofReduceBool, beyond propext, Classical.choice and Quot.sound"
    )
    assert "axioms sorryAx, Lean.trustCompiler, beyond" in axioms_problem(
        "'t' depends on axioms: [sorryAx, Lean.trustCompiler]", "t"
    )
    assert "no axioms of t" in axioms_problem("'u' does not depend on any axioms", "t")


def test_guarded_dojo_env_refuses_sorry_in_search_and_in_the_recheck():
    lean = FakeLean(two_goal_table())
    env = GuardedEnv(make_env(lean, checker=lambda theorem, proof: True))
    root = env.start(THEOREM)
    assert env.run_tactic(root, "sorry").error.startswith("refused:")
    assert "refused" in env.check_proof(THEOREM, ["constructor", "sorry"])
    assert lean.sessions[0].ran == []


def test_proof_text_indents_multi_line_tactics():
    assert (
        proof_text("", ["intro x", "cases x with\n| zero => rfl"]) == " by\n  intro x\n  cases x with\n  | zero => rfl"
    )


# -- the Lean project and set-up ---------------------------------------------------------------


def test_lean_project_is_pinned_to_the_minif2f_v4_20_pins():
    pins = Path(__file__).resolve().parents[2] / "shared" / "data" / "minif2f" / "pins-v4.20.0"
    if not pins.exists():
        pytest.skip(f"the shared miniF2F pins {pins} are absent")
    project = REPO_ROOT / "lean_project"
    assert (project / "lean-toolchain").read_text().strip() == (pins / "lean-toolchain").read_text().strip()
    ours = json.loads((project / "lake-manifest.json").read_text())
    theirs = json.loads((pins / "lake-manifest.json").read_text())
    assert ours["packages"] == theirs["packages"] and ours["name"] == "LeanProver"
    lakefile = (project / "lakefile.lean").read_text()
    assert 'require mathlib from git "https://github.com/leanprover-community/mathlib4" @ "v4.20.0"' in lakefile
    assert "LeanCopilot" not in lakefile and "moreLinkArgs" not in lakefile


def test_setup_lean_runs_cache_get_build_repl_then_clones_minif2f_and_traces_it(tmp_path):
    ran, traced = [], []
    project = tmp_path / "lean_project"
    project.mkdir()
    (project / "lakefile.lean").write_text("")
    setup_lean_project(
        project,
        run=lambda cmd, cwd, check: ran.append((cmd, cwd)),
        which=lambda name: "/usr/bin/lake",
        repl=lambda project: ran.append(("repl", project)),
        echo=lambda line: None,
        trace=traced.append,
    )
    checkout = minif2f_checkout(project)
    assert checkout == project / ".lake" / "prover" / "miniF2F-lean4"
    assert ran == [
        (["lake", "exe", "cache", "get"], project),
        (["lake", "build"], project),
        ("repl", project),
        (["git", "clone", "--quiet", "--no-checkout", MINIF2F_URL, str(checkout)], checkout.parent),
        (["git", "-C", str(checkout), "checkout", "--quiet", MINIF2F_COMMIT], checkout.parent),
    ]
    assert traced == [checkout]


def test_setup_lean_without_lake_says_to_install_elan():
    with pytest.raises(MissingDependencyError, match="elan") as error:
        setup_lean_project(REPO_ROOT / "lean_project", which=lambda name: None, echo=lambda line: None)
    assert ELAN_URL in str(error.value)


def test_setup_lean_reports_the_failed_step():
    def failing(cmd, cwd, check):
        raise subprocess.CalledProcessError(1, cmd)

    with pytest.raises(ProverError, match="lake exe cache get"):
        setup_lean_project(
            REPO_ROOT / "lean_project", run=failing, which=lambda name: "lake", repl=None, echo=lambda line: None
        )


def test_dojo_env_without_lake_is_a_missing_dependency(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty PATH: no lake
    with pytest.raises(MissingDependencyError, match="elan"):
        build(DojoConfig())


# -- real Lean (skipped where `lake` is not on PATH) ------------------------------------------------


def _prover(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "prover.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env={**os.environ},
        timeout=6 * 3600,
    )


@pytest.mark.lean
@pytest.mark.slow
def test_real_dojo_proves_mathd_algebra_182_with_ring(tmp_path):
    result = _prover(
        "attack",
        "mathd_algebra_182",
        "--env",
        "dojo",
        "--benchmark",
        "minif2f",
        "--policy",
        "fixed",
        "--tactic",
        "ring",
        "--tree-out",
        str(tmp_path / "tree.json"),
    )
    assert result.returncode == 0, result.stderr
    assert "proved mathd_algebra_182" in result.stdout and "ring" in result.stdout


@pytest.mark.lean
@pytest.mark.slow
def test_real_dojo_minif2f_theorem_starts_at_its_pinned_goal():
    theorem = {t.name: t for t in minif2f("valid", lean_project=REPO_ROOT / "lean_project")}["mathd_algebra_182"]
    env = build(DojoConfig())
    try:
        state = env.start(theorem)
        assert "7 * (3 * y + 2) = 21 * y + 14" in state.pp
        assert isinstance(env.run_tactic(state, "ring"), ProofFinished)
    finally:
        env.close()
