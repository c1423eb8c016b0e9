"""The Lean REPL backend against a fake lean-interact server that answers with
lean-interact's real response classes: start from `statement by sorry`, outcome mapping,
restart and replay after timeouts and crashes, the whole-file re-check, clean-up."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

lean_interact = pytest.importorskip("lean_interact")
from lean_interact.interface import CommandResponse, LeanError as ReplError, ProofStepResponse

from prover.config import REPO_ROOT
from prover.envs.repl import ReplConfig, ReplEnv, build
from prover.envs.safety import GuardedEnv
from prover.errors import MissingDependencyError
from prover.runs import summarize
from search import (
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
)
from tests.fakes import TablePolicy

HEADER = "import Mathlib\nopen Real\n"
STATEMENT = "theorem t (x : ℝ) (h : 0 < x) : x + 0 = x ∧ 0 < x :="
THEOREM = Theorem("t", statement=STATEMENT, header=HEADER)
ROOT = "x : ℝ\nh : 0 < x\n⊢ x + 0 = x ∧ 0 < x"
LEFT = ["x : ℝ\nh : 0 < x\n⊢ x + 0 = x", "x : ℝ\nh : 0 < x\n⊢ 0 < x"]
RIGHT = ["x : ℝ\nh : 0 < x\n⊢ 0 < x"]
POS = {"line": 1, "column": 0}


def step(goals=(), status="Incomplete: open goals remain", **extra):
    return {"goals": list(goals), "proofStatus": status, **extra}


def table():
    return {
        ROOT: {"constructor": step(LEFT), "simp": step([ROOT], messages=[{"severity": "error", "pos": POS, "data": "simp failed"}])},
        "\n\n".join(LEFT): {"simp": step(RIGHT), "slow": step(RIGHT), "omega": step(RIGHT)},
        "\n\n".join(RIGHT): {
            "exact h": step((), "Completed"),
            "exact sorry": step((), "Incomplete: contains sorry", sorries=[{"goal": "⊢ 0 < x", "proofState": 77}]),
            "bad_kernel": step((), "Error: kernel type check failed: oops"),
        },
    }


class FakeRepl:
    """Starts fake servers; ``faults[tactic]`` lists exceptions to raise on its next runs."""

    def __init__(self, steps, faults=None, statement_error=None, check_messages=()):
        self.steps = steps
        self.faults = {k: list(v) for k, v in (faults or {}).items()}
        self.statement_error = statement_error
        self.check_messages = list(check_messages)
        self.servers: list[FakeServer] = []

    def __call__(self):
        server = FakeServer(self, len(self.servers))
        self.servers.append(server)
        return server

    @property
    def alive(self) -> int:
        return sum(not s.killed for s in self.servers)


class FakeServer:
    def __init__(self, repl: FakeRepl, number: int):
        self.repl, self.number = repl, number
        self.killed = False
        self.commands: list[str] = []
        self.tactics: list[str] = []
        self.states: dict[int, str] = {}
        self.timeouts: list[float] = []

    def _state(self, pp: str) -> int:
        sid = self.number * 100 + len(self.states)
        self.states[sid] = pp
        return sid

    def run(self, request, timeout=None):
        if self.killed:
            raise ChildProcessError("The Lean server is not running.")
        self.timeouts.append(timeout)
        if isinstance(request, lean_interact.Command):
            return self._command(request)
        assert isinstance(request, lean_interact.ProofStep)
        pp = self.states.get(request.proof_state)
        if pp is None:
            return ReplError(message="Unknown proof state.")
        self.tactics.append(request.tactic)
        pending = self.repl.faults.get(request.tactic)
        if pending:
            fault = pending.pop(0)
            self.killed = True  # lean-interact kills the server on a timeout or a broken pipe
            raise fault
        answer = self.repl.steps.get(pp, {}).get(request.tactic)
        if answer is None:
            return ReplError(message=f"Lean error:\n<input>:1:0: unknown tactic {request.tactic}")
        answer = dict(answer)
        answer["proofState"] = self._state("\n\n".join(answer.get("goals", [])))
        return ProofStepResponse.model_validate(answer)

    def _command(self, request):
        self.commands.append(request.cmd)
        if request.cmd == HEADER:
            assert request.env is None
            return CommandResponse.model_validate({"env": 0})
        if request.cmd.endswith(" by sorry"):
            assert request.env == 0, "the statement must run in the header's environment"
            if self.repl.statement_error:
                return CommandResponse.model_validate(
                    {"env": 1, "messages": [{"severity": "error", "pos": POS, "data": self.repl.statement_error}]}
                )
            sorry = {"goal": ROOT, "proofState": self._state(ROOT), "pos": POS}
            return CommandResponse.model_validate(
                {"env": 1, "sorries": [sorry],
                 "messages": [{"severity": "warning", "pos": POS, "data": "declaration uses 'sorry'"}]}
            )
        # a whole-file check: a fresh command with its own imports
        assert request.env is None and request.cmd.startswith(HEADER)
        return CommandResponse.model_validate({"env": 2, "messages": self.repl.check_messages})

    def kill(self):
        self.killed = True


def make_env(repl: FakeRepl, **kwargs) -> ReplEnv:
    return ReplEnv(tactic_timeout_s=7.5, server_factory=repl, **kwargs)


def test_start_elaborates_the_statement_with_sorry_and_takes_its_goal():
    repl = FakeRepl(table())
    env = make_env(repl)
    root = env.start(THEOREM)
    assert root == TacticState(ROOT)
    assert repl.servers[0].commands == [HEADER, STATEMENT + " by sorry"]
    env.close()
    assert repl.alive == 0


def test_each_repl_answer_maps_to_the_engine_outcome():
    env = make_env(FakeRepl(table()))
    root = env.start(THEOREM)
    left = env.run_tactic(root, "constructor")
    assert isinstance(left, TacticState) and left.pp == "\n\n".join(LEFT)
    assert env.run_tactic(root, "simp") == LeanError("simp failed")
    assert "unknown tactic" in env.run_tactic(root, "blah").error
    right = env.run_tactic(left, "simp")
    assert right.pp == RIGHT[0]
    assert isinstance(env.run_tactic(right, "exact h"), ProofFinished)
    assert env.run_tactic(right, "exact sorry") == ProofGivenUp()
    assert "kernel type check failed" in env.run_tactic(right, "bad_kernel").error


def test_tactics_run_under_the_tactic_timeout():
    repl = FakeRepl(table())
    env = make_env(repl)
    env.run_tactic(env.start(THEOREM), "constructor")
    assert repl.servers[0].timeouts[-1] == 7.5


def test_statement_rejected_by_lean_is_an_init_error_and_the_process_is_killed():
    repl = FakeRepl(table(), statement_error="unknown identifier 'foo'")
    with pytest.raises(EnvInitError, match="unknown identifier"):
        make_env(repl).start(THEOREM)
    assert repl.alive == 0


def test_theorem_without_statement_is_an_init_error_counted_in_the_pass_rate():
    policy = TablePolicy({})
    result = best_first_search(Theorem("nameless"), policy, make_env(FakeRepl(table())), SearchLimits())
    assert result.status is SearchStatus.ERROR and "no statement" in result.error
    assert summarize([result.to_record()], ["nameless", "other"])["pass_rate"] == 0.0


def test_timeout_restarts_the_repl_and_replays_the_path_in_order():
    repl = FakeRepl(table(), faults={"slow": [TimeoutError("did not respond in time")]})
    env = make_env(repl)
    root = env.start(THEOREM)
    left = env.run_tactic(root, "constructor")
    with pytest.raises(EnvTimeoutError, match="restarted"):
        env.run_tactic(left, "slow")
    assert len(repl.servers) == 2 and repl.servers[0].killed
    assert repl.servers[1].commands == [HEADER, STATEMENT + " by sorry"]
    assert repl.servers[1].tactics == ["constructor"]
    right = env.run_tactic(left, "simp")
    assert isinstance(env.run_tactic(right, "exact h"), ProofFinished)
    assert repl.servers[1].tactics == ["constructor", "simp", "exact h"]


def test_search_through_crashes_and_timeouts_finds_the_proof():
    repl = FakeRepl(table(), faults={"slow": [TimeoutError("late")], "simp": [ConnectionAbortedError("died")]})
    policy = TablePolicy({ROOT: [("constructor", -0.1)], "\n\n".join(LEFT): [("slow", -0.1), ("simp", -0.2)],
                          RIGHT[0]: [("exact h", -0.1)]})
    env = make_env(repl)
    result = best_first_search(THEOREM, policy, env, SearchLimits(max_expansions=10))
    assert result.status is SearchStatus.PROVED
    assert result.proof == ["constructor", "simp", "exact h"]
    assert env.num_restarts == 2
    assert repl.alive == 0


def test_repeated_crashes_end_the_search_as_error_with_the_tree_kept():
    repl = FakeRepl(table(), faults={"omega": [ConnectionAbortedError("OOM")] * 4})
    policy = TablePolicy({ROOT: [("constructor", -0.1)], "\n\n".join(LEFT): [("omega", -0.1)]})
    result = best_first_search(THEOREM, policy, make_env(repl, max_crash_retries=1), SearchLimits(max_expansions=10))
    assert result.status is SearchStatus.ERROR and "crashed 2 times" in result.error
    assert result.tree is not None and result.tree.num_states == 2
    assert repl.alive == 0


def test_check_proof_compiles_the_whole_file_and_refuses_errors_and_sorry():
    proof = ["constructor", "simp", "exact h"]
    repl = FakeRepl(table())
    env = make_env(repl)
    assert env.check_proof(THEOREM, proof) is None
    assert repl.servers[0].commands[-1] == HEADER + "\n" + STATEMENT + " by\n  constructor\n  simp\n  exact h\n"
    bad = FakeRepl(table(), check_messages=[{"severity": "error", "pos": POS, "data": "unsolved goals"}])
    assert "unsolved goals" in make_env(bad).check_proof(THEOREM, proof)
    sorry = FakeRepl(table(), check_messages=[{"severity": "warning", "pos": POS, "data": "declaration uses 'sorry'"}])
    assert "sorry" in make_env(sorry).check_proof(THEOREM, proof)


def test_guarded_repl_env_refuses_unsafe_tactics_before_they_reach_the_repl():
    repl = FakeRepl(table())
    env = GuardedEnv(make_env(repl))
    root = env.start(THEOREM)
    assert env.run_tactic(root, "native_decide").error.startswith("refused:")
    assert "refused" in env.check_proof(THEOREM, ["constructor", "admit"])
    assert repl.servers[0].tactics == []


def test_repl_env_without_lake_is_a_missing_dependency(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MissingDependencyError, match="elan"):
        build(ReplConfig())


@pytest.mark.lean
@pytest.mark.slow
def test_real_repl_proves_mathd_algebra_182_with_ring(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "prover.cli", "attack", "mathd_algebra_182", "--env", "repl", "--benchmark",
         "minif2f", "--policy", "fixed", "--tactic", "ring", "--tree-out", str(tmp_path / "tree.json")],
        capture_output=True, text=True, cwd=REPO_ROOT, env={**os.environ}, timeout=3600,
    )
    assert result.returncode == 0, result.stderr
    assert "proved mathd_algebra_182" in result.stdout


@pytest.mark.lean
@pytest.mark.slow
def test_real_repl_attacks_a_typed_in_statement(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "prover.cli", "attack", "--statement", "theorem two_add (x : ℕ) : x + 2 = 2 + x :=",
         "--env", "repl", "--policy", "fixed", "--tactic", "ring", "--tactic", "omega",
         "--tree-out", str(tmp_path / "tree.json")],
        capture_output=True, text=True, cwd=REPO_ROOT, env={**os.environ}, timeout=3600,
    )
    assert result.returncode == 0, result.stderr
    assert "proved two_add" in result.stdout
