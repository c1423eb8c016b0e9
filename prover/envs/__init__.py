"""Proof environments: ``synthetic`` and ``replay`` run anywhere; ``dojo`` (LeanDojo) and
``repl`` (Lean REPL) need a Lean toolchain. Choose one by name through ``make_env``."""

from __future__ import annotations

from typing import Sequence

from search import ProofEnv, ProofFinished, TacticState, Theorem


def make_env(config) -> ProofEnv:
    """The environment named by ``config.name`` (an ``EnvConfig``), behind the tactic filter.

    Every environment is wrapped in ``prover.safety.GuardedEnv``, so no search can send
    ``sorry``, ``native_decide`` (unless ``config.allow_native_decide``) or a metaprogram
    to Lean, and every found proof passes the same filter in ``check_proof``.
    """
    from prover.registry import ENVS, build
    from prover.safety import GuardedEnv, TacticFilter

    env = build("environment", ENVS, config)
    return GuardedEnv(env, TacticFilter(allow_native_decide=getattr(config, "allow_native_decide", False)))


def replay_check(env: ProofEnv, theorem: Theorem, tactics: Sequence[str]) -> str | None:
    """Re-check a proof by running ``tactics`` in a fresh session of ``theorem``.

    None when they finish the proof exactly at the last tactic, else why not.
    """
    state = env.start(theorem)
    for i, tactic in enumerate(tactics, 1):
        outcome = env.run_tactic(state, tactic)
        if isinstance(outcome, ProofFinished):
            return None if i == len(tactics) else f"the proof is finished early, at step {i}"
        if not isinstance(outcome, TacticState):
            return f"step {i} (`{tactic}`) does not continue the proof: {getattr(outcome, 'error', outcome)}"
        state = outcome
    return "the tactics leave goals open"
