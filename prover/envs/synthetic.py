"""A synthetic proof environment with tunable shape, for offline runs and performance work.

Every theorem ``synthetic_<i>`` is a generated proof problem. Any tactic string is
accepted: with probability ``error_rate`` it fails; otherwise it leads to one of
``branching`` child states (tactics that land on the same child merge, as they do in
Lean). Child 0 of every state on the proof path makes progress, each other child does
with probability ``proof_density``; a state that made ``depth`` steps of progress is
proved. Children that make no progress start a dead end that never closes. All of it is
a pure function of (seed, theorem, state, tactic), so runs are reproducible, and each
tactic sleeps ``latency_s`` to stand in for Lean's time.

    env = SyntheticEnv(SyntheticConfig(branching=3, depth=2, seed=1))
    state = env.start(Theorem("synthetic_0"))

With ``rule="learnable"`` (``--rule learnable``) the problems can be learned instead: each
state is a small arithmetic goal, and the one tactic that makes progress is a fixed
function of two things printed in it, the number type of its variables (ℕ, ℤ, ℝ) and the
relation of its ``⊢`` line (=, ≤, <, ≠): ``RULE`` maps the pair to one of the eight
``LEARNABLE_TACTICS``. The rule is never shown to the policy, which sees the state text
only. A theorem's proof takes between 1 and ``depth`` steps (drawn per theorem); every
other tactic of the eight fails with probability ``error_rate`` and otherwise turns the
goal into ``⊢ False`` (with a stray hypothesis of its own), a dead end where every tactic
fails; any other text is an unknown tactic. ``branching`` and ``proof_density`` play no
part. Theorems ``synthetic_<i>`` (the default theorem set) and held-out theorems
``synthetic_heldout_<i>`` (``heldout_theorems``) come from the same distribution, so a
model that learns the rule from proofs of the first proves the second, and a model that
memorises states does not.

    env = SyntheticEnv(SyntheticConfig(rule="learnable", depth=6))
    state = env.start(Theorem("synthetic_heldout_0003"))  # a b y : ℝ / h₀ : 5 ≠ y / ... / ⊢ a + 9 * b = 29
    env.run_tactic(state, RULE[features(state.pp)])       # norm_num (ℝ, =): the next goal

With ``rule="hard"`` (``--rule hard``) the working tactic depends on the goal's structure,
proofs are long, high-prior tactics lead into dead ends that look like live goals, and
there are more tactics than a node tries: see ``prover.envs.synthetic_hard``. The default
and learnable rules stay as they are (smoke tests).
"""

from __future__ import annotations

import hashlib
import random
import re
import time
from dataclasses import dataclass

from search import EnvInitError, LeanError, Outcome, ProofFinished, TacticState, Theorem

from prover.envs import replay_check
from prover.envs import synthetic_hard as hard
from prover.settings import Settings, setting

NAME = re.compile(r"synthetic_(heldout_)?(\d+)$")
DEAD_END = -1

# The learnable rule (rule="learnable"): the tactic that makes progress, by the number type
# of a goal's variables and the relation of its ⊢ line. Neither feature decides it alone,
# and the relations of the hypotheses above the goal are there to be ignored.
LEARNABLE_TACTICS = ("norm_num", "simp", "linarith", "omega", "ring", "nlinarith", "positivity", "decide")
NUMBER_TYPES = ("ℕ", "ℤ", "ℝ")
RELATIONS = ("=", "≤", "<", "≠")
RULE: dict[tuple[str, str], str] = {
    ("ℕ", "="): "omega",
    ("ℕ", "≤"): "linarith",
    ("ℕ", "<"): "decide",
    ("ℕ", "≠"): "simp",
    ("ℤ", "="): "ring",
    ("ℤ", "≤"): "nlinarith",
    ("ℤ", "<"): "omega",
    ("ℤ", "≠"): "decide",
    ("ℝ", "="): "norm_num",
    ("ℝ", "≤"): "positivity",
    ("ℝ", "<"): "linarith",
    ("ℝ", "≠"): "nlinarith",
}
DEAD_GOAL = "⊢ False"
_VARIABLES = "abcmnxyz"


@dataclass(frozen=True)
class SyntheticConfig(Settings):
    branching: int = setting(4, "Distinct child states per state.", min=1)
    depth: int = setting(5, "Length of the shortest proof.", min=1)
    proof_density: float = setting(0.3, "Chance that a child state makes progress.", min=0, max=1)
    error_rate: float = setting(0.4, "Chance that a tactic fails.", min=0, max=1)
    latency_s: float = setting(0.0, "Seconds each tactic takes.", min=0)
    seed: int = setting(0, "Seed of the generated problems.", flag="--env-seed")
    rule: str = setting(
        "random",
        "How tactics act: random (any tactic may work, by chance), learnable (the working tactic is a "
        "fixed function of the goal's text, so a model can learn it) or hard (the working tactic depends on "
        "the goal's structure, long proofs, dead ends that look alive; see prover.envs.synthetic_hard).",
        choices=("random", "learnable", "hard"),
    )


def _unit(*parts: object) -> float:
    """A reproducible number in [0, 1) from the parts (Python's hash() is salted per process)."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2**64


class SyntheticEnv:
    """See the module docstring. One theorem at a time, like a Lean session."""

    def __init__(self, config: SyntheticConfig = SyntheticConfig()):
        self.config = config
        self._theorem = ""
        self._remaining: dict[str, int] = {}  # state pp -> steps to a proof, or DEAD_END

    def start(self, theorem: Theorem) -> TacticState:
        if not NAME.match(theorem.name):
            raise EnvInitError(
                f"'{theorem.name}' is not a synthetic theorem (synthetic_<number> or synthetic_heldout_<number>)"
            )
        self._theorem = theorem.name
        self._remaining = {}
        if self.config.rule == "learnable":
            steps = 1 + int(_unit(self.config.seed, "length", theorem.name) * self.config.depth)
            return self._goal(theorem.name, steps)
        if self.config.rule == "hard":
            shortest = (self.config.depth + 1) // 2
            steps = shortest + int(_unit(self.config.seed, "length", theorem.name) * (self.config.depth - shortest + 1))
            return self._hard_goal(theorem.name, steps, True)
        return self._state(theorem.name, self.config.depth)

    def _state(self, key: str, remaining: int) -> TacticState:
        digest = hashlib.blake2b(f"{self.config.seed}:{key}".encode(), digest_size=6).hexdigest()
        pp = f"n : ℕ\nh : P n\n⊢ Q_{digest} n"
        self._remaining[pp] = remaining
        return TacticState(pp)

    def run_tactic(self, state: TacticState, tactic: str) -> Outcome:
        if self.config.latency_s:
            time.sleep(self.config.latency_s)
        remaining = self._remaining.get(state.pp)
        if remaining is None:
            return LeanError("unknown proof state: it does not belong to this session")
        if self.config.rule == "learnable":
            return self._learnable_step(state.pp, tactic.strip(), remaining)
        if self.config.rule == "hard":
            return self._hard_step(state.pp, tactic.strip(), remaining)
        c = self.config
        if _unit(c.seed, "error", state.pp, tactic) < c.error_rate:
            return LeanError(f"synthetic: `{tactic}` failed on this goal")
        child = int(_unit(c.seed, "child", state.pp, tactic) * c.branching)
        progress = remaining != DEAD_END and (
            child == 0 or _unit(c.seed, "progress", state.pp, child) < c.proof_density
        )
        if progress and remaining == 1:
            return ProofFinished()
        return self._state(f"{state.pp}/{child}", remaining - 1 if progress else DEAD_END)

    # ---- rule="learnable" ------------------------------------------------------------------

    def _goal(self, key: str, remaining: int) -> TacticState:
        """A generated arithmetic goal (a pure function of the seed and ``key``)."""
        pp = goal_text(random.Random(f"{self.config.seed}:{key}"))
        self._remaining[pp] = remaining
        return TacticState(pp)

    def _learnable_step(self, pp: str, tactic: str, remaining: int) -> Outcome:
        if tactic not in LEARNABLE_TACTICS:
            return LeanError(f"unknown tactic `{tactic}`")
        if remaining == DEAD_END:
            return LeanError(f"{tactic} failed: the goal is False")
        if tactic == RULE[features(pp)]:
            if remaining == 1:
                return ProofFinished()
            return self._goal(f"{pp}/{tactic}", remaining - 1)
        if _unit(self.config.seed, "error", pp, tactic) < self.config.error_rate:
            return LeanError(f"{tactic} failed to prove the goal")
        # The hypotheses stay, one more appears (each wrong tactic leaves its own), the goal is lost.
        rng = random.Random(f"{self.config.seed}:{pp}/{tactic}")
        names = pp.split(" : ", 1)[0].split()
        stray = f"h✝ : {rng.randint(0, 9)} {rng.choice(RELATIONS)} {rng.choice(names)}\n"
        dead = pp[: pp.rindex("⊢")] + stray + DEAD_GOAL
        self._remaining[dead] = DEAD_END
        return TacticState(dead)

    # ---- rule="hard" -----------------------------------------------------------------------

    def _hard_goal(self, key: str, num_operators: int, true: bool) -> TacticState:
        pp = hard.hard_goal(random.Random(f"{self.config.seed}:{key}"), num_operators, true)
        # A false goal is known by the session as DEAD_END - its size (the text cannot say).
        self._remaining.setdefault(pp, num_operators if true else DEAD_END - num_operators)
        return TacticState(pp)

    def _hard_step(self, pp: str, tactic: str, remaining: int) -> Outcome:
        if tactic not in hard.HARD_TACTICS:
            return LeanError(f"unknown tactic `{tactic}`")
        true = remaining > 0
        size = remaining if true else DEAD_END - remaining
        if tactic == hard.working_tactic(pp):
            if size == 1:
                return ProofFinished() if true else LeanError(f"{tactic} failed to prove the goal")
            return self._hard_goal(f"{pp}/{tactic}", size - 1, true)
        trap_rate = hard.TEMPTING_TRAP_RATE if tactic in hard.TEMPTING else hard.OTHER_TRAP_RATE
        if _unit(self.config.seed, "trap", pp, tactic) < trap_rate:
            return self._hard_goal(f"{pp}/{tactic}", size, False)  # no progress, and the goal is lost
        return LeanError(f"{tactic} failed to prove the goal")

    def check_proof(self, theorem: Theorem, tactics: list[str]) -> str | None:
        """Replay ``tactics`` from a fresh start of ``theorem``."""
        return replay_check(self, theorem, tactics)

    def close(self) -> None:
        self._remaining = {}


def goal_text(rng: random.Random) -> str:
    """A learnable-mode goal: variables of one number type, a few hypotheses, a goal.

    ``x y : ℤ / h₀ : 0 < x / ⊢ 2 * x + y ≤ 9``: its type and its goal's relation decide
    the tactic (``RULE``); the hypotheses are noise with relations of their own.
    """
    number_type = rng.choice(NUMBER_TYPES)
    names = sorted(rng.sample(_VARIABLES, rng.randint(1, 3)))
    lines = [f"{' '.join(names)} : {number_type}"]
    for i in range(rng.randint(0, 2)):
        lines.append(f"h{'₀₁₂'[i]} : {rng.randint(0, 9)} {rng.choice(RELATIONS)} {rng.choice(names)}")
    terms = [
        f"{rng.randint(2, 9)} * {name}" if rng.random() < 0.5 else name
        for name in rng.sample(names, rng.randint(1, len(names)))
    ]
    lines.append(f"⊢ {' + '.join(terms)} {rng.choice(RELATIONS)} {rng.randint(0, 99)}")
    return "\n".join(lines)


def features(pp: str) -> tuple[str, str]:
    """(number type, goal relation) of a learnable-mode goal: what ``RULE`` is keyed by."""
    number_type = pp.split("\n", 1)[0].rsplit(" : ", 1)[1]
    goal = pp[pp.rindex("⊢") :]
    relation = next(r for r in RELATIONS if f" {r} " in goal)
    return number_type, relation


def heldout_theorems(count: int) -> list[Theorem]:
    """``synthetic_heldout_0000`` ...: theorems from the same distribution as the default
    synthetic set (``synthetic_0000`` ...), never among them."""
    return [Theorem(f"synthetic_heldout_{i:04d}") for i in range(count)]


def build(config: SyntheticConfig) -> SyntheticEnv:
    return SyntheticEnv(config)
