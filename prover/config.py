"""One config object per concern, built from CLI flags (or a run directory's config.json)
and passed whole: ``EnvConfig``, ``PolicyConfig``, ``TheoremSetConfig``, ``RunConfig``."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from search import SearchLimits

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """Where the shared data lives: $PROVER_DATA, else ``../shared/data`` beside the repo."""
    return Path(os.environ.get("PROVER_DATA", REPO_ROOT.parent / "shared" / "data"))


def default_traces_path() -> Path:
    return shared_data_dir() / "minif2f" / "tactic_traces.jsonl"


def default_minif2f_path() -> Path:
    return shared_data_dir() / "minif2f" / "minif2f.jsonl"


@dataclass(frozen=True)
class EnvConfig:
    """Which proof environment, and its settings. Unused fields are ignored by a backend."""

    name: str = "synthetic"
    # replay
    traces: str | None = None  # default: default_traces_path()
    # synthetic
    branching: int = 4
    depth: int = 5
    proof_density: float = 0.3
    error_rate: float = 0.4
    latency_s: float = 0.0
    seed: int = 0
    # Lean (dojo / repl)
    lean_project: str = str(REPO_ROOT / "lean_project")
    tactic_timeout_s: float = 60.0
    memory_limit_mb: int = 16_000
    allow_native_decide: bool = False
    # faulty (prover.faults): injected failures around the environment named fault_inner
    fault_inner: str = "synthetic"
    fault_crash_prob: float = 0.0
    fault_timeout_prob: float = 0.0
    fault_hang_prob: float = 0.0
    fault_hang_s: float = 5.0
    fault_exit_theorems: tuple[str, ...] = ()  # their start kills a Ray worker's process
    fault_exit_marker_dir: str | None = None  # set: each of them does so only once


@dataclass(frozen=True)
class PolicyConfig:
    """Which tactic policy, and its settings. Unused fields are ignored by a backend."""

    name: str = "fixed"
    # fixed
    tactics: tuple[str, ...] = ()  # empty: the built-in list
    # replay
    traces: str | None = None  # default: default_traces_path()
    # model policies (hf / vllm)
    model: str = "EleutherAI/llemma_7b"
    prompt: str = "llemma"  # "llemma" (formal2formal few-shot) or "goal_proofstep"
    decoding: str = "sampling"  # "sampling" or "beam"
    temperature: float = 1.0
    top_p: float = 0.95
    max_new_tokens: int = 128
    max_prompt_tokens: int = 2048
    length_normalise: bool = False
    device: str = "auto"
    seed: int = 0


@dataclass(frozen=True)
class TheoremSetConfig:
    """Which theorems: a named benchmark (and split), or a file listing them."""

    benchmark: str | None = None  # None: the chosen environment's own set
    split: str = "valid"
    theorems_file: str | None = None
    num_theorems: int = 20  # size of the synthetic set
    limit: int | None = None  # first N theorems only


@dataclass(frozen=True)
class RunConfig:
    """Everything a batch run was asked to do, saved as the run directory's config.json."""

    env: EnvConfig = field(default_factory=EnvConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    theorems: TheoremSetConfig = field(default_factory=TheoremSetConfig)
    limits: SearchLimits = field(default_factory=SearchLimits)
    scorer: str = "cumulative"
    # How the run was spread over Ray (a prover.distributed.DistributedConfig); None: in-process.
    distributed: "DistributedConfig | None" = None  # noqa: F821 (imported lazily, it is optional)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "RunConfig":
        def build(kind, values):
            known = {f.name for f in fields(kind)}
            values = {k: (tuple(v) if isinstance(v, list) else v) for k, v in values.items() if k in known}
            return kind(**values)

        return cls(
            env=build(EnvConfig, data.get("env", {})),
            policy=build(PolicyConfig, data.get("policy", {})),
            theorems=build(TheoremSetConfig, data.get("theorems", {})),
            limits=build(SearchLimits, data.get("limits", {})),
            scorer=data.get("scorer", "cumulative"),
            distributed=_distributed_from_dict(data.get("distributed"), build),
        )


def _distributed_from_dict(values: dict | None, build):
    if not values:
        return None
    from prover.distributed import DistributedConfig  # imports no Ray

    return build(DistributedConfig, values)
