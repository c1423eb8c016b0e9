"""The stand-in Lean costs what Lean costs (tests/lean_standin/costs.py): imports paid by
commands without an environment and shared by commands on one, elaboration and tactic
time, resident memory that psutil sees, a (goal, tactic) fraction that runs long, and death
past ``RLIMIT_AS`` as lean-interact's memory limit sets it. Driven by the real
``lean_interact.LeanServer``."""

from __future__ import annotations

import time

import psutil
import pytest

lean_interact = pytest.importorskip("lean_interact")

from prover.envs.lean import prepare_repl

from tests.lean_standin import costs, read_costs, set_knobs
from tests.test_env_repl import COMPLEX_AND, HEADER, standin, traces_file  # noqa: F401 (fixtures)

pytestmark = pytest.mark.standin


def server(standin, memory_limit_mb: int | None = 4096):  # noqa: F811
    config = prepare_repl(
        standin.project,
        standin.env["LEAN_STANDIN_REPL_DIR"],
        standin.env["LEAN_STANDIN_LAKE"],
        memory_limit_mb,
        verbose=False,
    )
    return lean_interact.LeanServer(config)


def test_imports_are_paid_by_commands_without_env_and_shared_by_commands_on_one(standin):  # noqa: F811
    set_knobs(standin.env, import_delay_s=0.3, command_delay_s=0.05, tactic_cost_s=0.02)
    repl = server(standin)
    started = time.monotonic()
    header = repl.run(lean_interact.Command(cmd=HEADER))
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    theorem = repl.run(lean_interact.Command(cmd=COMPLEX_AND.statement + " by sorry", env=header.env))
    step = repl.run(lean_interact.ProofStep(proof_state=theorem.sorries[0].proof_state, tactic="apply And.intro"))
    assert 0.07 <= time.monotonic() - started < 0.3 and len(step.goals) == 2  # no second import on env H
    repl.run(lean_interact.Command(cmd=HEADER + COMPLEX_AND.statement + " by sorry"))  # a fresh import
    kinds = [(c["kind"], c["seconds"]) for c in read_costs(standin.env)]
    assert kinds == [
        ("import", 0.3),
        ("command", 0.05),
        ("command", 0.05),
        ("tactic", 0.02),
        ("import", 0.3),
        ("command", 0.05),
    ]
    repl.kill()


def test_memory_grows_per_import_and_command_and_is_resident(standin):  # noqa: F811
    set_knobs(standin.env, import_memory_mb=80, command_memory_mb=20)
    repl = server(standin)
    process = psutil.Process(repl._proc.pid)
    before = process.memory_info().rss
    header = repl.run(lean_interact.Command(cmd=HEADER))
    after_import = process.memory_info().rss
    repl.run(lean_interact.Command(cmd=COMPLEX_AND.statement + " by sorry", env=header.env))
    after_command = process.memory_info().rss
    assert after_import - before > 95 * 2**20  # the import and its command, touched, not only reserved
    assert after_command - after_import > 18 * 2**20
    repl.kill()


def test_a_process_past_its_address_space_limit_dies_as_lean_does(standin):  # noqa: F811
    set_knobs(standin.env, import_memory_mb=150)
    repl = server(standin, memory_limit_mb=300)  # lean-interact sets RLIMIT_AS from it
    repl.run(lean_interact.Command(cmd=HEADER))
    pid = repl._proc.pid
    with pytest.raises(ConnectionAbortedError, match="INTERNAL PANIC: out of memory"):
        repl.run(lean_interact.Command(cmd=HEADER))
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_the_slow_fraction_is_the_same_pairs_in_every_process():
    costs.configure({"slow_fraction": "0.1"})
    pairs = [(f"⊢ x = {i}", tactic) for i in range(300) for tactic in ("simp", "ring")]
    slow = [pair for pair in pairs if costs.is_slow(*pair)]
    assert 30 <= len(slow) <= 90  # about 10% of 600
    assert all(costs.is_slow(goal, "  " + tactic) for goal, tactic in slow)  # as looked up: whitespace normalised
    costs.configure({})
    assert not any(costs.is_slow(*pair) for pair in pairs)


def test_a_slow_pair_runs_long_and_others_cost_the_tactic_time(standin):  # noqa: F811
    costs.configure({"slow_fraction": "0.5"})
    goal = "p q r : Prop\nh1 : p ∧ q\nh2 : q → r\n⊢ p ∧ r"
    tactics = ["apply And.intro", "omega", "simp", "linarith", "ring", "norm_num", "aesop"]
    slow = [t for t in tactics if costs.is_slow(goal, t)]
    fast = [t for t in tactics if not costs.is_slow(goal, t)]
    costs.configure({})
    assert slow and fast
    set_knobs(standin.env, slow_fraction=0.5, tactic_delay_s=30, tactic_cost_s=0.01)
    repl = server(standin)
    state = repl.run(lean_interact.Command(cmd=HEADER + COMPLEX_AND.statement + " by sorry"))
    proof_state = state.sorries[0].proof_state
    repl.run(lean_interact.ProofStep(proof_state=proof_state, tactic=fast[0]), timeout=5)
    with pytest.raises(TimeoutError):
        repl.run(lean_interact.ProofStep(proof_state=proof_state, tactic=slow[0]), timeout=1)
    logged = [(c["slow"], c["seconds"]) for c in read_costs(standin.env) if c["kind"] == "tactic"]
    assert logged == [(False, 0.01), (True, 30.0)]


def test_lean_stops_a_slow_repl_step_at_its_heartbeat_limit_and_the_repl_goes_on(standin):  # noqa: F811
    costs.configure({"slow_fraction": "0.5"})
    goal = "p q r : Prop\nh1 : p ∧ q\nh2 : q → r\n⊢ p ∧ r"
    tactics = ["apply And.intro", "omega", "simp", "linarith", "ring", "norm_num", "aesop", "constructor"]
    slow = [t for t in tactics if costs.is_slow(goal, t)]
    fast = [t for t in tactics if not costs.is_slow(goal, t)]
    costs.configure({})
    assert slow and fast
    set_knobs(standin.env, slow_fraction=0.5, tactic_delay_s=30, heartbeat_s=0.2)
    repl = server(standin)
    pid = repl._proc.pid
    state = repl.run(lean_interact.Command(cmd=HEADER + COMPLEX_AND.statement + " by sorry"))
    proof_state = state.sorries[0].proof_state
    started = time.monotonic()
    stopped = repl.run(lean_interact.ProofStep(proof_state=proof_state, tactic=slow[0]), timeout=5)
    assert 0.2 <= time.monotonic() - started < 5
    assert isinstance(stopped, lean_interact.interface.LeanError)
    assert "maximum number of heartbeats (200000) has been reached" in stopped.message
    answer = repl.run(lean_interact.ProofStep(proof_state=proof_state, tactic=fast[0]), timeout=5)
    assert "heartbeats" not in str(answer) and repl._proc.pid == pid  # the same process answers on
    logged = [(c["slow"], c["stopped"], c["seconds"]) for c in read_costs(standin.env) if c["kind"] == "tactic"]
    assert logged == [(True, True, 0.2), (False, False, 0.0)]
    repl.kill()
