"""Proof environments: ``synthetic`` and ``replay`` run anywhere; ``dojo`` (LeanDojo) and
``repl`` (Lean REPL) need a Lean toolchain. ``make_env`` builds one by name, behind the
tactic filter.
"""

from __future__ import annotations

from typing import Sequence

from search import ProofEnv, ProofFinished, TacticState, Theorem

# Set to "1" in a process whose death loses nothing (a Ray search worker: the driver owns
# every result and sends the theorem again), where an environment may end the process.
DISPOSABLE_PROCESS_VARIABLE = "PROVER_DISPOSABLE_PROCESS"


def make_env(spec, safety=None) -> ProofEnv:
    """The environment that ``spec`` (a ``prover.config.BackendSpec``) names, wrapped once
    in ``prover.envs.safety.GuardedEnv``.

    So no search can send ``sorry``, ``native_decide`` (unless ``safety`` allows it) or a
    metaprogram to Lean, and every found proof passes the same filter in ``check_proof``.
    """
    from prover.envs.safety import GuardedEnv, TacticFilter

    env = spec.build()  # through the registry, which imports this package's modules by name
    allow_native = bool(safety is not None and safety.allow_native_decide)
    return GuardedEnv(env, TacticFilter(allow_native_decide=allow_native))


def replay_check(env: ProofEnv, theorem: Theorem, tactics: Sequence[str]) -> str | None:
    """Re-check a proof by running ``tactics`` in a fresh session of ``theorem``.

    None when they finish the proof exactly at the last tactic, else why not.
    """
    if not tactics:
        return "the proof has no tactics"
    state = env.start(theorem)
    for i, tactic in enumerate(tactics, 1):
        outcome = env.run_tactic(state, tactic)
        if isinstance(outcome, ProofFinished):
            return None if i == len(tactics) else f"the proof is finished early, at step {i}"
        if not isinstance(outcome, TacticState):
            reason = getattr(outcome, "error", None) or "the goals were given up"
            return f"step {i} (`{tactic}`) does not continue the proof: {reason}"
        state = outcome
    return "the tactics leave goals open"
