"""Warm Lean REPLs (``prover.envs.repl_pool``) driving the real ``lean_interact.LeanServer``
against the stand-in Lean, whose costs (``tests/lean_standin/costs.py``) make imports,
memory, memory kills and Lean's heartbeat limit visible: one import per REPL across many
theorems, the warm checker's verdicts, recycling at max uses and at the memory level with
the replacement imported off the search's path, a tactic stopped at the heartbeat limit
that kills nothing, and a wall-clock timeout or a memory kill served by the checker with no
import on the search's path: a worker imports its header 2 + recycles times.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

pytest.importorskip("lean_interact")

from search import EnvInitError, EnvTimeoutError, ProofFinished, TacticState, Theorem

from prover.envs.repl import ReplConfig, ReplEnv, build

from tests.lean_standin import read_costs, set_knobs
from tests.test_env_repl import (  # noqa: F401 (fixtures)
    COMPLEX_AND,
    COMPLEX_AND_PROOF,
    FOO,
    HEADER,
    MY_THEOREM,
    TIMEOUT_S,
    alive,
    standin,
    traces_file,
)

pytestmark = pytest.mark.standin


@pytest.fixture()
def pooled(standin):  # noqa: F811 (the fixture imported above)
    """``pooled(**settings) -> ReplEnv`` with a pool of its own, closed after the test."""
    made: list[ReplEnv] = []

    def make(**settings) -> ReplEnv:
        options = dict(
            lean_project=str(standin.project),
            repl_path=standin.env["LEAN_STANDIN_REPL_DIR"],
            lake_path=standin.env["LEAN_STANDIN_LAKE"],
            tactic_timeout_s=5.0,
            memory_limit_mb=4096,
            startup_timeout_s=10.0,
            repl_spares=0,
        )
        env = build(ReplConfig(**{**options, **settings}))
        made.append(env)
        return env

    yield make
    for env in made:
        env.close()
        if env.pool is not None:
            env.pool.close()


def imports_by_pid(standin) -> Counter:  # noqa: F811
    return Counter(c["pid"] for c in read_costs(standin.env) if c["kind"] == "import")


def prove_complex_and(env: ReplEnv) -> None:
    state = env.start(COMPLEX_AND)
    for tactic in COMPLEX_AND_PROOF:
        state = env.run_tactic(state, tactic)
    assert isinstance(state, ProofFinished)


def wait_for(condition, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def test_one_import_per_repl_across_many_theorems_and_rechecks(standin, pooled):  # noqa: F811
    env = pooled()
    for _ in range(3):
        prove_complex_and(env)
        assert env.check_proof(COMPLEX_AND, COMPLEX_AND_PROOF) is None
        assert isinstance(env.run_tactic(env.start(FOO), "induction x"), TacticState)
        env.close()
    imports = imports_by_pid(standin)
    assert len(imports) == 2 and set(imports.values()) == {1}  # the search REPL and the checker, once each
    assert len(standin.repl_pids()) == 2
    stats = env.pool.stats()
    assert stats["imports"] == 2 and stats["leases"] == 6 and stats["checks"] == 3


def test_the_warm_checker_gives_the_verdicts_of_the_fresh_check(standin, pooled):  # noqa: F811
    env = pooled()
    native = Theorem("standin_native", statement="theorem standin_native : 2 ^ 10 = 1024 :=", header=HEADER)
    trust = Theorem("standin_trust", statement="theorem standin_trust : True :=", header=HEADER)
    no_axioms = Theorem("standin_rfl", statement="theorem standin_rfl : 2 + 2 = 4 :=", header=HEADER)
    assert env.check_proof(COMPLEX_AND, COMPLEX_AND_PROOF) is None
    assert env.check_proof(COMPLEX_AND, COMPLEX_AND_PROOF) is None  # the same name twice on H: no clash
    assert "unsolved goals" in env.check_proof(COMPLEX_AND, COMPLEX_AND_PROOF[:3])
    assert env.check_proof(COMPLEX_AND, ["apply And.intro", "exact h1.left", "sorry"]) == "the proof uses `sorry`"
    assert "tactic 'linarith' failed" in env.check_proof(COMPLEX_AND, ["linarith"])
    assert env.check_proof(native, ["native_decide"]) == "the proof depends on the axiom Lean.ofReduceBool"
    assert env.check_proof(trust, ["exact Lean.trustCompiler"]) == "the proof depends on the axiom Lean.trustCompiler"
    assert env.check_proof(no_axioms, ["rfl"]) is None
    assert sum(imports_by_pid(standin).values()) == 1  # every check on the checker's header environment


def on_path(stats: dict) -> int:
    return stats["imports"] - stats["background_imports"]


def test_a_repl_is_recycled_after_max_uses_and_its_replacement_imports_off_the_path(standin, pooled):  # noqa: F811
    env = pooled(repl_max_uses=2)
    for _ in range(5):
        prove_complex_and(env)
        env.close()
    assert env.pool.settle(20)
    stats = env.pool.stats()
    assert stats["recycles"] == 2 and stats["drops"] == 0
    assert stats["imports"] == 2 + stats["recycles"]  # the search REPL and the checker, then one per recycle
    assert on_path(stats) == 1  # only the first REPL's import was waited for
    imports = imports_by_pid(standin)
    assert len(imports) == 4 and set(imports.values()) == {1}


def test_a_repl_above_the_memory_level_is_recycled_when_its_theorem_ends(standin, pooled):  # noqa: F811
    set_knobs(standin.env, import_memory_mb=20, command_memory_mb=30)
    env = pooled(repl_max_memory_mb=150)  # the stand-in's own ~25 MB + 20 + 30 per command or step
    state = env.start(COMPLEX_AND)
    first = env._repl.server._proc.pid
    assert 60 < env._repl.memory_mb() < 150
    for tactic in COMPLEX_AND_PROOF:
        state = env.run_tactic(state, tactic)
    assert env._repl.memory_mb() > 150  # resident, as psutil sees it
    env.close()
    assert env.pool.stats()["recycles"] == 1 and not alive(first)
    env.start(FOO)
    assert env._repl.server._proc.pid != first


def test_a_tactic_lean_stops_at_its_heartbeat_limit_is_a_timeout_that_kills_nothing(standin, pooled):  # noqa: F811
    env = pooled(tactic_timeout_s=TIMEOUT_S)
    root = env.start(COMPLEX_AND)
    pid = env._repl.server._proc.pid
    right = env.run_tactic(env.run_tactic(root, "apply And.intro"), "exact h1.left")
    set_knobs(standin.env, tactic_delay_s=30, slow_tactic="apply h2", heartbeat_s=0.1)
    with pytest.raises(EnvTimeoutError, match="heartbeat limit"):
        env.run_tactic(right, "apply h2")
    set_knobs(standin.env, tactic_delay_s=None, slow_tactic=None, heartbeat_s=None)
    assert isinstance(env.run_tactic(env.run_tactic(right, "apply h2"), "exact h1.right"), ProofFinished)
    assert env.num_restarts == 0 and env.num_heartbeat_stops == 1
    assert env._repl.server._proc.pid == pid and alive(pid)  # the same REPL, its proof states intact
    env.close()
    assert env.pool.settle(20)
    stats = env.pool.stats()
    assert stats["imports"] == 2 and stats["drops"] == 0


def test_without_the_pool_a_heartbeat_stop_also_keeps_the_process(standin, pooled):  # noqa: F811
    env = pooled(repl_pool=False, tactic_timeout_s=TIMEOUT_S)
    root = env.start(COMPLEX_AND)
    pid = env._server._proc.pid
    set_knobs(standin.env, tactic_delay_s=30, slow_tactic="apply And.intro", heartbeat_s=0.1)
    with pytest.raises(EnvTimeoutError, match="heartbeat limit"):
        env.run_tactic(root, "apply And.intro")
    set_knobs(standin.env, tactic_delay_s=None, slow_tactic=None, heartbeat_s=None)
    assert isinstance(env.run_tactic(root, "apply And.intro"), TacticState)
    assert env.num_restarts == 0 and env._server._proc.pid == pid


def test_imports_are_two_plus_recycles_across_many_theorems_with_slow_tactics(standin, pooled):  # noqa: F811
    set_knobs(standin.env, slow_fraction=0.3, tactic_delay_s=30, heartbeat_s=0.05)
    env = pooled(repl_max_uses=3, tactic_timeout_s=TIMEOUT_S)
    tactics = ["apply And.intro", "omega", "simp", "linarith", "norm_num", "constructor", "exact h1.left"]
    stopped = 0
    for _ in range(7):
        root = env.start(COMPLEX_AND)
        for tactic in tactics:
            try:
                env.run_tactic(root, tactic)
            except EnvTimeoutError:
                stopped += 1
        assert env.check_proof(COMPLEX_AND, COMPLEX_AND_PROOF) is None
        env.close()
    assert env.pool.settle(20)
    stats = env.pool.stats()
    assert stopped >= 7 and env.num_restarts == 0  # the same slow pairs in every theorem, none killed a REPL
    assert stats["recycles"] == 2 and stats["drops"] == 0 and stats["checks"] == 7
    assert stats["imports"] == 2 + stats["recycles"] and on_path(stats) == 1


@pytest.mark.slow
def test_a_wall_clock_timeout_moves_the_search_to_the_checker_with_no_import_on_its_path(standin, pooled):  # noqa: F811
    set_knobs(standin.env, import_delay_s=4.0)
    env = pooled(tactic_timeout_s=TIMEOUT_S)
    root = env.start(COMPLEX_AND)
    wait_for(lambda: env.pool.processes() == 1)  # the checker has imported, in the background
    left = env.run_tactic(root, "apply And.intro")
    right = env.run_tactic(left, "exact h1.left")
    set_knobs(standin.env, tactic_delay_s=30, slow_tactic="apply h2")  # no heartbeat limit stops it
    with pytest.raises(EnvTimeoutError, match="restarted"):
        env.run_tactic(right, "apply h2")
    set_knobs(standin.env, tactic_delay_s=None, slow_tactic=None)
    assert isinstance(env.run_tactic(env.run_tactic(right, "apply h2"), "exact h1.right"), ProofFinished)
    assert env.check_proof(COMPLEX_AND, COMPLEX_AND_PROOF) is None  # on the new checker, once it has imported
    stats = env.pool.stats()
    # Counted, not timed: the restart took the warm checker, so the only import the search
    # waited for is the first REPL's, before the search; the new checker imported in the
    # background.
    assert on_path(stats) == 1 and stats["checker_moves"] == 1
    assert env.num_restarts == 1 and stats["imports"] == 3


def test_a_memory_kill_is_restarted_on_the_checker_and_the_path_replayed(standin, pooled):  # noqa: F811
    # RLIMIT_AS 400 MB: the stand-in's ~25 MB plus seven 50 MB commands or steps fit, eight do not.
    set_knobs(standin.env, command_memory_mb=50)
    env = pooled(memory_limit_mb=400, repl_max_memory_mb=100_000)
    prove_complex_and(env)  # the header, the statement, 4 steps: 6 allocations in this REPL
    env.close()
    wait_for(lambda: env.pool.processes() == 2)  # the search REPL, idle, and the checker
    root = env.start(FOO)  # the 7th, on the same REPL (the most used idle one is lent first)
    victim = env._repl.server._proc.pid
    two = env.run_tactic(root, "induction x")  # the 8th kills it; the checker replays the path and retries
    assert isinstance(two, TacticState) and two.pp.startswith("case zero")
    assert not alive(victim) and env.num_restarts == 1
    assert env.pool.stats()["drops"] >= 1
    stats = env.pool.stats()
    assert stats["imports"] - stats["background_imports"] == 1


def test_elaborate_gives_every_sorry_of_a_command_as_a_proof_state(standin, pooled):  # noqa: F811
    env = pooled()
    repl = env.pool.lease(HEADER)
    command = f"{COMPLEX_AND.statement} by sorry\n\n{FOO.statement} by sorry\n"
    response, states = env.pool.elaborate(repl, command, 10.0)
    assert [goal for goal, _ in states][0].startswith("p q r : Prop")
    assert len(states) == 2 and states[1][0] == "x : ℕ\n⊢ x = x"
    import lean_interact

    step = repl.run(lean_interact.ProofStep(proof_state=states[0][1], tactic="apply And.intro"), 5.0)
    assert len(step.goals) == 2
    env.pool.give_back(repl)
    assert env.pool.settle(20)
    assert sorted(imports_by_pid(standin).values()) == [1, 1]  # the REPL and, beside it, the checker


def test_a_header_lean_rejects_costs_one_process_per_theorem(standin, pooled):  # noqa: F811
    env = pooled()
    bad = Theorem("bad", statement=FOO.statement, header="import NoSuchModule\n")
    for _ in range(3):
        with pytest.raises(EnvInitError, match="rejected the header"):
            env.start(bad)
        assert env.pool.settle(20)
    assert len(standin.repl_pids()) == 4  # the first lease's own try and its checker's, then one per theorem
    assert env.pool.stats()["imports"] == 0
