"""Adding an environment is one module and one registry entry, and nothing else.

This file is that module: a ``Settings`` class, a ``build``, and a theorem set of its own.
The tests register it (and its theorem set) in the registries, then drive it through
``prover prove-split`` and ``prover attack`` as a user would, without any other edit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from search import LeanError, ProofFinished, TacticState, Theorem

from prover.cli import main
from prover.registry import ENVS, Backend
from prover.settings import Settings, setting
from prover.theorem_sets import THEOREM_SETS, TheoremSet


@dataclass(frozen=True)
class CountdownConfig(Settings):
    tactic: str = setting("norm_num", "The tactic that counts down by one.")


class CountdownEnv:
    """``countdown_N`` is proved by N steps of the counting tactic; any other tactic fails."""

    def __init__(self, config: CountdownConfig):
        self.tactic = config.tactic

    def start(self, theorem: Theorem) -> TacticState:
        return TacticState(f"⊢ {int(theorem.name.rsplit('_', 1)[1])} = 0")

    def run_tactic(self, state: TacticState, tactic: str):
        left = int(state.pp.split()[1])
        if tactic != self.tactic:
            return LeanError(f"{tactic} does not count down")
        return ProofFinished() if left == 1 else TacticState(f"⊢ {left - 1} = 0")

    def close(self) -> None:
        pass


def build(config: CountdownConfig) -> CountdownEnv:
    return CountdownEnv(config)


def countdown_theorems(spec, env) -> list[Theorem]:
    return [Theorem(f"countdown_{n}") for n in range(1, spec.num_theorems + 1)]


@pytest.fixture
def countdown(monkeypatch, tmp_path):
    monkeypatch.setitem(
        ENVS,
        "countdown",
        Backend(
            "countdown",
            __name__,
            "CountdownConfig",
            "a countdown, for the test of a new environment",
            default_policy="fixed",
            default_theorem_set="countdown",
            theorem_sets=("countdown",),
        ),
    )
    monkeypatch.setitem(THEOREM_SETS, "countdown", TheoremSet("countdown", "countdown_1, ...", countdown_theorems))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(*args: str) -> int:
    try:
        main(list(args))
    except SystemExit as exc:
        return exc.code
    return 0


def test_a_registered_environment_proves_a_set_in_batch(countdown, capsys):
    code = run(
        "prove-split",
        "--env",
        "countdown",
        "--num-theorems",
        "3",
        "--num-workers",
        "0",
        "--no-progress",
        "--out",
        "runs/countdown",
    )
    assert code == 0, capsys.readouterr().err
    assert "proved 3 of 3" in capsys.readouterr().out
    config = json.loads((countdown / "runs" / "countdown" / "config.json").read_text())
    assert config["env"] == {"name": "countdown", "tactic": "norm_num"}
    proofs = [json.loads(line)["proof"] for line in (countdown / "runs" / "countdown" / "results.jsonl").open()]
    assert sorted(map(len, proofs)) == [1, 2, 3]


def test_a_registered_environment_attacks_one_theorem_and_refuses_what_it_cannot_do(countdown, capsys):
    assert run("attack", "countdown_4", "--env", "countdown") == 0
    out = capsys.readouterr().out
    assert "proved countdown_4" in out and out.count("norm_num") >= 4
    # Its capabilities say it takes no typed-in statement and serves only its own theorem set.
    assert run("attack", "--env", "countdown", "--statement", "theorem t : 1 = 1 :=") == 2
    assert "use --env repl" in capsys.readouterr().err
    assert run("attack", "synthetic_0001", "--env", "countdown", "--theorem-set", "synthetic") == 2
    assert "proves the theorems of countdown, not of --theorem-set synthetic" in capsys.readouterr().err
