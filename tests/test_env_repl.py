"""The Lean REPL backend driving the real ``lean_interact.LeanServer`` against the stand-in
Lean toolchain (tests/lean_standin): start from `statement by sorry`, outcome mapping,
restart and replay after timeouts and crashes (also during the replay), the whole-file
re-check with ``#print axioms``, the toolchain taken from the project, clean-up.

Nothing of lean-interact is replaced: only the REPL and ``lake`` it runs are the
stand-in's (``repl_path``, ``lake_path``). One test keeps a fake of lean-interact's
``LeanREPLConfig``: the one that shows ``prepare_repl`` leaving the REPL to lean-interact
when no ``repl_path`` is given, because lean-interact then clones its REPL from GitHub
into its own package directory, which a test can neither reach nor should write to.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest

lean_interact = pytest.importorskip("lean_interact")
from lean_interact.interface import CommandResponse

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

from prover.config import flag_targets
from prover.data import repl_fixtures_path
from prover.envs import lean as lean_module
from prover.envs.lean import prepare_repl
from prover.envs.repl import ReplConfig, ReplEnv, axioms_problem, build, declared_name
from prover.envs.safety import GuardedEnv, TacticFilter
from prover.errors import MissingDependencyError
from prover.run.rundir import Summary

from tests.fakes import TablePolicy
from tests.lean_standin import LEAN_TOOLCHAIN, install, read_log, set_knobs, standin_variables, write_traces
from tests.lean_standin import SYNTHETIC_RECORDS as SYNTHETIC

pytestmark = pytest.mark.standin

HEADER = "import Mathlib\n"
# Recorded by the Lean REPL's own tests (prover/data/repl_fixtures.jsonl).
COMPLEX_AND = Theorem(
    "complex_and", statement="theorem complex_and (p q r : Prop) (h1 : p ∧ q) (h2 : q → r) : p ∧ r :=", header=HEADER
)
COMPLEX_AND_ROOT = "p q r : Prop\nh1 : p ∧ q\nh2 : q → r\n⊢ p ∧ r"
COMPLEX_AND_PROOF = ["apply And.intro", "exact h1.left", "apply h2", "exact h1.right"]
FOO = Theorem("foo", statement="theorem foo (x : Nat) : x = x :=", header=HEADER)
EX = Theorem("ex", statement="theorem ex : False :=", header=HEADER)
MY_THEOREM = Theorem("my_theorem", statement="theorem my_theorem (x : Nat) : x = x :=", header=HEADER)
ONE_IS_ZERO = Theorem("one_is_zero", statement="example : 1 = 0 :=", header=HEADER)
# Tactic timeout of the tests that make a tactic slow: far above a stand-in answer's time
# even on a loaded machine, so that only the slowed tactic times out.
TIMEOUT_S = 1.5


def standin_traces(directory: Path, shipped_traces: Path) -> Path:
    """The shipped miniF2F traces, the REPL's recorded tests and SYNTHETIC, in one file."""
    records = []
    for path in (shipped_traces, repl_fixtures_path()):
        with open(path, encoding="utf-8") as lines:
            records.extend(json.loads(line) for line in lines if line.strip())
    return write_traces(directory / "traces.jsonl", records + SYNTHETIC)


def lean_project(directory: Path) -> Path:
    """A Lake project directory pinned to the stand-in's Lean."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "lean-toolchain").write_text(LEAN_TOOLCHAIN + "\n")
    (directory / "lakefile.lean").write_text("import Lake\nopen Lake DSL\n\npackage project\n")
    return directory


@dataclass
class Standin:
    env: dict[str, str]
    project: Path

    def repl_pids(self) -> list[int]:
        return [entry["pid"] for entry in read_log(self.env) if entry["tool"] == "repl"]


@pytest.fixture(scope="module")
def traces_file(tmp_path_factory, traces_path) -> Path:
    return standin_traces(tmp_path_factory.mktemp("repl-traces"), traces_path)


@pytest.fixture()
def standin(tmp_path, traces_file, monkeypatch) -> Standin:
    """The stand-in on PATH for this process (lean-interact's subprocesses inherit it)."""
    env = install(tmp_path, traces=traces_file)
    for name, value in standin_variables(env).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("ELAN_TOOLCHAIN", raising=False)
    return Standin(env, lean_project(tmp_path / "project"))


def make_env(standin: Standin, **kwargs) -> ReplEnv:
    options = dict(tactic_timeout_s=5.0, memory_limit_mb=4096, startup_timeout_s=10.0)
    return ReplEnv(
        lean_project=standin.project,
        repl_path=standin.env["LEAN_STANDIN_REPL_DIR"],
        lake_path=standin.env["LEAN_STANDIN_LAKE"],
        **{**options, **kwargs},
    )


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


# -- start and outcomes -----------------------------------------------------------------------


def test_start_elaborates_the_statement_with_sorry_and_takes_its_goal(standin):
    env = make_env(standin)
    root = env.start(COMPLEX_AND)
    assert root == TacticState(COMPLEX_AND_ROOT)
    [pid] = standin.repl_pids()
    assert alive(pid)
    env.close()
    assert not alive(pid)


def test_each_repl_answer_maps_to_the_engine_outcome(standin):
    env = make_env(standin)
    root = env.start(COMPLEX_AND)
    left = env.run_tactic(root, "apply And.intro")
    assert isinstance(left, TacticState) and left.pp.startswith("case left\n")
    assert env.run_tactic(root, "exat h1") == LeanError("Lean error:\n<input>:1:1: unknown tactic")
    assert env.run_tactic(root, "omega").error.startswith("Lean error:\ntactic 'omega' failed")
    right = env.run_tactic(env.run_tactic(left, "exact h1.left"), "apply h2")
    assert isinstance(env.run_tactic(right, "exact h1.right"), ProofFinished)
    assert env.run_tactic(right, "sorry") == ProofGivenUp()
    root = env.start(MY_THEOREM)  # an error Lean logged while it went on with `sorry`
    assert env.run_tactic(root, "exact my_fake_premise") == LeanError("Unknown identifier `my_fake_premise`")
    kernel = env.run_tactic(env.start(EX), "apply ex")  # no goals, but the kernel refuses the proof
    assert kernel.error.startswith("the goals are closed but the proof does not check: Error: kernel type check failed")
    root = env.start(ONE_IS_ZERO)
    cases = env.run_tactic(root, "cases' exists_ne 2 with n h")
    assert "metavariable" in env.run_tactic(cases, "simpa [] using h _").error
    env.close()


def test_a_step_that_leaves_goals_is_a_state_even_when_a_sorry_closed_one(standin):
    env = make_env(standin)
    two = env.run_tactic(env.start(FOO), "induction x")
    assert two.pp.startswith("case zero\n⊢ 0 = 0\n\ncase succ")
    # The REPL answers with `sorries` (the zero case) and "Incomplete: open goals remain".
    one = env.run_tactic(two, "sorry")
    assert one == TacticState("case succ\nn✝ : ℕ\na✝ : n✝ = n✝\n⊢ n✝ + 1 = n✝ + 1")
    assert env.run_tactic(one, "sorry") == ProofGivenUp()  # the step that closes the proof with sorry
    assert isinstance(env.run_tactic(two, "next => rfl"), TacticState)
    env.close()


def test_tactics_run_under_the_tactic_timeout_and_a_timeout_restarts_and_replays(standin):
    env = make_env(standin, tactic_timeout_s=TIMEOUT_S)
    left = env.run_tactic(env.start(COMPLEX_AND), "apply And.intro")
    right = env.run_tactic(left, "exact h1.left")
    set_knobs(standin.env, tactic_delay_s=30, slow_tactic="apply h2")
    with pytest.raises(EnvTimeoutError, match="restarted"):
        env.run_tactic(right, "apply h2")
    first, second = standin.repl_pids()
    assert not alive(first) and alive(second)
    set_knobs(standin.env, tactic_delay_s=None, slow_tactic=None)
    q = env.run_tactic(right, "apply h2")  # the replayed session has `right`
    assert isinstance(env.run_tactic(q, "exact h1.right"), ProofFinished)
    assert env.num_restarts == 1 and len(standin.repl_pids()) == 2
    env.close()


def test_a_crash_restarts_the_repl_replays_the_path_and_retries_the_tactic(standin, tmp_path):
    env = make_env(standin)
    left = env.run_tactic(env.start(COMPLEX_AND), "apply And.intro")
    set_knobs(standin.env, crash_tactic="exact h1.left", crash_once=str(tmp_path / "crashed"))
    right = env.run_tactic(left, "exact h1.left")
    assert right.pp == "case right\np q r : Prop\nh1 : p ∧ q\nh2 : q → r\n⊢ r"
    assert env.num_restarts == 1 and len(standin.repl_pids()) == 2
    env.close()


@pytest.mark.slow
def test_a_crash_while_replaying_after_a_restart_starts_another_session(standin, tmp_path):
    env = make_env(standin, tactic_timeout_s=TIMEOUT_S)
    left = env.run_tactic(env.start(COMPLEX_AND), "apply And.intro")
    right = env.run_tactic(left, "exact h1.left")
    # `apply h2` times out; the replay of `exact h1.left` in the fresh REPL crashes once.
    set_knobs(
        standin.env,
        tactic_delay_s=30,
        slow_tactic="apply h2",
        crash_tactic="exact h1.left",
        crash_once=str(tmp_path / "crashed"),
    )
    with pytest.raises(EnvTimeoutError):
        env.run_tactic(right, "apply h2")
    assert len(standin.repl_pids()) == 3 and env.num_restarts == 2
    set_knobs(standin.env, tactic_delay_s=None, slow_tactic=None)
    assert isinstance(env.run_tactic(right, "apply h2"), TacticState)  # the third REPL goes on
    env.close()


@pytest.mark.slow
def test_search_through_a_crash_and_a_timeout_finds_the_proof(standin, tmp_path):
    set_knobs(
        standin.env,
        crash_tactic="exact h1.left",
        crash_once=str(tmp_path / "crashed"),
        tactic_delay_s=30,
        slow_tactic="exact h1",
    )
    left = (
        "case left\np q r : Prop\nh1 : p ∧ q\nh2 : q → r\n⊢ p\n\ncase right\np q r : Prop\nh1 : p ∧ q\nh2 : q → r\n⊢ r"
    )
    policy = TablePolicy(
        {COMPLEX_AND_ROOT: [("apply And.intro", -0.1)], left: [("exact h1", -0.1), ("exact h1.left", -0.2)]},
        default=[("apply h2", -0.1), ("exact h1.right", -0.2)],
    )
    env = make_env(standin, tactic_timeout_s=TIMEOUT_S)
    result = best_first_search(COMPLEX_AND, policy, env, SearchLimits(max_expansions=10))
    assert result.status is SearchStatus.PROVED, result.error
    assert result.proof == COMPLEX_AND_PROOF
    assert env.num_restarts == 2
    assert not any(alive(pid) for pid in standin.repl_pids())


@pytest.mark.slow
def test_a_tactic_that_keeps_crashing_ends_the_search_as_error_with_the_tree_kept(standin):
    set_knobs(standin.env, crash_tactic="exact h1.left")
    policy = TablePolicy({COMPLEX_AND_ROOT: [("apply And.intro", -0.1)]}, default=[("exact h1.left", -0.1)])
    env = make_env(standin, max_crash_retries=1)
    result = best_first_search(COMPLEX_AND, policy, env, SearchLimits(max_expansions=10))
    assert result.status is SearchStatus.ERROR and "crashed 2 times" in result.error
    assert result.tree is not None and result.tree.num_states == 2
    assert not any(alive(pid) for pid in standin.repl_pids())


def test_the_start_runs_under_the_startup_timeout_not_the_tactic_timeout(standin):
    set_knobs(standin.env, startup_delay_s=1)
    env = make_env(standin, tactic_timeout_s=0.2, startup_timeout_s=10)
    assert env.start(COMPLEX_AND) == TacticState(COMPLEX_AND_ROOT)
    env.close()
    with pytest.raises(EnvInitError, match="TimeoutError"):
        make_env(standin, startup_timeout_s=0.3).start(COMPLEX_AND)
    assert build(ReplConfig(lean_project=str(standin.project), startup_timeout_s=7.0)).startup_timeout_s == 7.0


def test_header_or_statement_lean_rejects_is_an_init_error_and_the_process_is_killed(standin):
    env = make_env(standin)
    with pytest.raises(EnvInitError, match="unknown module prefix 'NoSuchLibrary'"):
        env.start(Theorem("complex_and", statement=COMPLEX_AND.statement, header="import NoSuchLibrary\n"))
    [pid] = standin.repl_pids()
    assert not alive(pid)


def test_theorem_without_statement_is_an_init_error_counted_in_the_pass_rate(standin):
    result = best_first_search(Theorem("nameless"), TablePolicy({}), make_env(standin), SearchLimits())
    assert result.status is SearchStatus.ERROR and "no statement" in result.error
    assert Summary.of(["nameless", "other"], [result.to_record()]).pass_rate == 0.0


def test_guarded_repl_env_refuses_unsafe_tactics_before_they_reach_the_repl(standin):
    set_knobs(standin.env, crash_tactic="native_decide")  # the REPL would die if it saw one
    env = GuardedEnv(make_env(standin), TacticFilter())
    root = env.start(Theorem("standin_native", statement="theorem standin_native : 2 ^ 10 = 1024 :=", header=HEADER))
    assert env.run_tactic(root, "native_decide").error.startswith("refused:")
    assert "refused" in env.check_proof(COMPLEX_AND, ["apply And.intro", "admit"])
    assert len(standin.repl_pids()) == 1
    env.close()


# -- the re-check -----------------------------------------------------------------------------


def test_check_proof_compiles_the_whole_proof_and_refuses_errors_and_sorry(standin):
    env = make_env(standin)
    assert env.check_proof(COMPLEX_AND, COMPLEX_AND_PROOF) is None
    assert "unsolved goals" in env.check_proof(COMPLEX_AND, COMPLEX_AND_PROOF[:3])
    assert env.check_proof(COMPLEX_AND, ["apply And.intro", "exact h1.left", "sorry"]) == "the proof uses `sorry`"
    assert "tactic 'linarith' failed" in env.check_proof(COMPLEX_AND, ["linarith"])
    env.close()


def test_check_proof_rejects_axioms_beyond_the_standard_three_and_names_them(standin):
    env = make_env(standin)
    native = Theorem("standin_native", statement="theorem standin_native : 2 ^ 10 = 1024 :=", header=HEADER)
    trust = Theorem("standin_trust", statement="theorem standin_trust : True :=", header=HEADER)
    no_axioms = Theorem("standin_rfl", statement="theorem standin_rfl : 2 + 2 = 4 :=", header=HEADER)
    assert env.check_proof(native, ["native_decide"]) == "the proof depends on the axiom Lean.ofReduceBool"
    assert env.check_proof(trust, ["exact Lean.trustCompiler"]) == "the proof depends on the axiom Lean.trustCompiler"
    assert env.check_proof(no_axioms, ["rfl"]) is None
    env.close()


def test_axioms_problem_reads_the_print_axioms_line_and_refuses_a_missing_answer():
    def answer(*messages):
        return CommandResponse.model_validate(
            {
                "env": 0,
                "messages": [
                    {"severity": severity, "pos": {"line": line, "column": 0}, "data": data}
                    for severity, line, data in messages
                ],
            }
        )

    standard = "'t' depends on axioms: [propext, Classical.choice, Quot.sound]"
    assert axioms_problem(answer(("info", 7, standard)), 7) is None
    assert axioms_problem(answer(("info", 7, "'t' does not depend on any axioms")), 7) is None
    two = "'t' depends on axioms: [propext, sorryAx, Classical.choice, Lean.ofReduceBool, Quot.sound]"
    assert axioms_problem(answer(("info", 7, two)), 7) == "the proof depends on the axioms sorryAx, Lean.ofReduceBool"
    assert "did not answer" in axioms_problem(answer(("info", 3, two)), 7)  # not the line of our #print
    assert "did not answer" in axioms_problem(answer(), 7)


def test_declared_name_finds_the_theorem_and_names_an_example():
    assert declared_name("theorem mathd_algebra_478\n  (b h v : ℝ) :\n  v = 65 :=")[0] == "mathd_algebra_478"
    assert declared_name("lemma «odd name» : True :=")[0] == "«odd name»"
    assert declared_name("@[simp] private theorem Foo.bar: True :=")[0] == "Foo.bar"
    name, statement = declared_name("example : 2 + 2 = 4 :=")
    assert statement == f"theorem {name} : 2 + 2 = 4 :=" and name.startswith("prover_checked_")


# -- set-up: the project's toolchain, the REPL's location ------------------------------------


def test_repl_env_starts_from_any_directory_when_elan_has_no_default_toolchain(standin, monkeypatch, tmp_path):
    monkeypatch.setenv("LEAN_STANDIN_NO_DEFAULT_TOOLCHAIN", "1")  # elan installed as the README says
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    monkeypatch.chdir(outside)  # lean-interact runs `lake --version` here
    env = make_env(standin)
    root = env.start(COMPLEX_AND)
    assert isinstance(env.run_tactic(root, "apply And.intro"), TacticState)
    env.close()
    versions = [entry for entry in read_log(standin.env) if entry["argv"] == ["lake", "--version"]]
    assert versions and all(Path(entry["cwd"]) == outside for entry in versions)
    assert "ELAN_TOOLCHAIN" not in os.environ  # only while lean-interact sets up


def test_prepare_repl_builds_the_given_repl_from_any_directory_and_says_where_it_is(standin, monkeypatch, tmp_path):
    monkeypatch.setenv("LEAN_STANDIN_NO_DEFAULT_TOOLCHAIN", "1")
    monkeypatch.chdir(tmp_path)
    said: list[str] = []
    repl_dir = standin.env["LEAN_STANDIN_REPL_DIR"]
    config = prepare_repl(standin.project, repl_dir, standin.env["LEAN_STANDIN_LAKE"], echo=said.append)
    assert config.cache_repl_dir == repl_dir and config.lean_version == "v4.20.0"
    assert said == [f"the Lean REPL for Lean v4.20.0 is built in {repl_dir}"]
    assert [(Path(e["cwd"]), e["argv"]) for e in read_log(standin.env)] == [
        (tmp_path, ["lake", "--version"]),
        (Path(repl_dir), ["lake", "build"]),
    ]


def test_without_repl_path_lean_interact_fetches_its_own_repl_with_the_configured_lake(monkeypatch, tmp_path):
    made = []

    class LeanREPLConfig:  # lean-interact's would clone augustepoiroux/repl from GitHub
        def __init__(self, **options):
            made.append({**options, "ELAN_TOOLCHAIN": os.environ.get("ELAN_TOOLCHAIN")})
            self.lean_version, self.cache_repl_dir = "v4.20.0", "lean_interact/cache/repl"

    fake = SimpleNamespace(LeanREPLConfig=LeanREPLConfig, LocalProject=lambda **options: ("project", options))
    monkeypatch.setattr(lean_module, "import_lean_interact", lambda: fake)
    monkeypatch.delenv("ELAN_TOOLCHAIN", raising=False)
    project = lean_project(tmp_path / "project")
    prepare_repl(project, lake_path="/opt/elan/bin/lake", verbose=False)
    [options] = made
    assert "local_repl_path" not in options
    assert options["lake_path"] == "/opt/elan/bin/lake" and options["ELAN_TOOLCHAIN"] == LEAN_TOOLCHAIN
    assert options["project"] == (
        "project",
        {"directory": str(project.resolve()), "lake_path": "/opt/elan/bin/lake", "auto_build": False},
    )


def test_repl_config_has_repl_path_and_lake_path_flags():
    targets = flag_targets()
    for flag, name in (("--repl-path", "repl_path"), ("--lake-path", "lake_path")):
        assert any(t.backend == "repl" and t.field.name == name for t in targets[flag])
    assert ReplConfig().repl_path is None and ReplConfig().lake_path == "lake"


def test_repl_env_without_lake_is_a_missing_dependency(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MissingDependencyError, match="elan"):
        build(ReplConfig())
    with pytest.raises(MissingDependencyError, match="--lake-path"):
        build(ReplConfig(lake_path=str(tmp_path / "no-lake")))


def test_a_project_without_lean_toolchain_is_an_init_error(standin, tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    env = ReplEnv(
        lean_project=bare, repl_path=standin.env["LEAN_STANDIN_REPL_DIR"], lake_path=standin.env["LEAN_STANDIN_LAKE"]
    )
    with pytest.raises(EnvInitError, match="no lean-toolchain file"):
        env.start(COMPLEX_AND)
