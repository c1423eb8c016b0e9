"""The architecture, checked: imports point one way, and settings live in one place.

The import graph is read from the source with ``ast`` (imports inside functions count
too: a lazy import is still a dependency). Every module sits on a layer; a module may
import its own layer or lower ones, never a higher one, and the graph has no cycle.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import pytest

from prover.config import RunConfig, apply_flags, flag_targets, resume_conflicts
from prover.envs.synthetic import SyntheticConfig
from prover.settings import Settings, flag_of, setting

ROOT = Path(__file__).resolve().parents[1]

# Lower layers know nothing of higher ones. Modules not listed take their package's layer.
LAYERS = {
    "search": 0,
    "prover.errors": 1,
    "prover.data": 1,
    "prover.settings": 2,
    "prover.traces": 3,
    "prover.statements": 3,
    "prover.holes": 3,
    "prover.envs": 4,
    "prover.policies": 4,
    "prover.lean_files": 5,
    "prover.registry": 5,  # above the backends it imports by name (see registry_edges)
    "prover.theorem_sets": 6,
    "prover.config": 7,
    "prover.presets": 8,
    "prover.doctor": 8,
    "prover.run": 8,
    "prover.views": 8,
    "prover.learn": 9,
    "prover.run.provenance": 8,
    "prover.run.rundir": 8,
    "prover.run.serving": 8,
    "prover.views.viz": 8,
    "prover.run.driver": 9,
    "prover.views.report": 9,
    "prover.learn.export": 9,
    "prover.views.plots": 9,
    "prover.views.compare": 10,
    "prover.learn.training": 10,
    "prover.learn.dpo": 11,  # DPO starts from a policy trained by prover.learn.training
    "prover.learn.iterate": 12,
    "prover.run.cluster": 10,
    "prover.run.watchdog": 10,
    "prover.fill": 12,  # it runs its holes as prove-split does (prover.run.batch)
    "prover.run.progress": 8,
    "prover.run.batch": 11,
    "prover.cli": 13,
}


def layer_of(module: str) -> int:
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in LAYERS:
            return LAYERS[".".join(parts[:end])]
    raise AssertionError(f"{module} has no layer: add it to LAYERS")


def project_modules() -> dict[str, Path]:
    modules = {}
    for package in ("search", "prover"):
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def import_graph() -> nx.DiGraph:
    modules = project_modules()
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for module, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # ``from prover.envs import synthetic`` imports a module; ``import x`` of a name, its module.
                names = [
                    f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules else node.module
                    for alias in node.names
                ]
            else:
                continue
            for name in names:
                if name in modules and name != module:
                    graph.add_edge(module, name)
    return graph


def registry_edges() -> list[tuple[str, str]]:
    """The imports the registry makes by name: one edge to each backend's module."""
    from prover.registry import KINDS

    return [("prover.registry", entry.module) for table in KINDS.values() for entry in table.values()]


def test_the_registry_names_modules_that_exist_below_it_and_hold_what_it_says():
    from prover.registry import KINDS, load

    modules = project_modules()
    for kind, table in KINDS.items():
        for entry in table.values():
            assert entry.module in modules, f"the {kind} {entry.name} names a module that does not exist"
            assert layer_of(entry.module) < layer_of("prover.registry"), f"{entry.module} is not below the registry"
            assert callable(load(entry.module, "build")) and isinstance(load(entry.module, entry.config_class), type)


def test_project_imports_have_no_cycle():
    graph = import_graph()
    graph.add_edges_from(registry_edges())
    cycles = list(nx.simple_cycles(graph))
    assert not cycles, f"import cycles: {cycles[:3]}"


def test_no_import_runs_back_up_the_layers():
    upward = [(a, b) for a, b in [*import_graph().edges, *registry_edges()] if layer_of(b) > layer_of(a)]
    assert not upward, f"imports of a higher layer: {upward}"


def test_ray_is_imported_by_one_module_only():
    importers = set()
    for module, path in project_modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and node.level == 0
                else []
            )
            if any(name == "ray" or name.startswith("ray.") for name in names):
                importers.add(module)
    assert importers == {"prover.run.cluster"}


def test_the_cli_imports_no_heavy_dependency():
    heavy = ["torch", "transformers", "ray", "lean_dojo", "lean_interact", "vllm", "matplotlib"]
    code = f"import sys, prover.cli; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ---- settings: one edit in one config class ---------------------------------------------------


@dataclass(frozen=True)
class WiderSyntheticConfig(SyntheticConfig):
    """SyntheticConfig with one setting more, as a developer would add it."""

    goal_width: int = setting(3, "Hypotheses per generated goal.", min=1)


def test_a_new_setting_reaches_flags_config_json_and_resume_checks(monkeypatch):
    import prover.envs.synthetic as synthetic
    from prover.cli.options import setting_options

    monkeypatch.setattr(synthetic, "SyntheticConfig", WiderSyntheticConfig)
    targets = flag_targets()
    assert [t.backend for t in targets["--goal-width"]] == ["synthetic"]
    generated = [make(lambda: None).__click_params__[-1] for make in setting_options(include_distributed=True)]
    option = next(p for p in generated if "--goal-width" in p.opts)
    assert "Hypotheses per generated goal." in option.help and option.group == "Environment"

    config = apply_flags(RunConfig(), {"--goal-width": 5})
    assert config.env.options.goal_width == 5
    saved = json.loads(json.dumps(config.to_dict()))
    assert saved["env"]["goal_width"] == 5
    assert RunConfig.from_dict(saved) == config
    conflicts = resume_conflicts(config, {"--goal-width": 7}, {})
    assert conflicts == ["--goal-width 7 (the run used 5)"]
    assert resume_conflicts(config, {"--goal-width": 5}, {}) == []


def test_every_setting_of_every_backend_has_a_flag_with_help_and_round_trips():
    from prover.config import SECTIONS
    from prover.registry import ENVS, POLICIES, resolve_config_class

    classes = [cls for _, cls, _ in SECTIONS]
    classes += [resolve_config_class("environment", n) for n, b in ENVS.items() if not b.hidden]
    classes += [resolve_config_class("policy", n) for n, b in POLICIES.items() if not b.hidden]
    targets = flag_targets()
    for cls in classes:
        for f in dataclasses.fields(cls):
            assert f.metadata.get("help"), f"{cls.__name__}.{f.name} has no help text"
            assert any(t.field.name == f.name for t in targets[flag_of(f)])
    config = RunConfig()
    assert RunConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_distributed_settings_may_change_on_resume_and_search_settings_may_not():
    config = RunConfig()
    assert resume_conflicts(config, {"--num-workers": 0, "--max-batch-size": 8}, {}) == []
    assert resume_conflicts(config, {"--max-expansions": 5}, {}) == ["--max-expansions 5 (the run used 100)"]
    assert resume_conflicts(config, {}, {"--env": "replay"}) == ["--env replay (the run used synthetic)"]


def test_config_classes_reject_bad_values_in_one_sentence():
    from prover.settings import ConfigError

    with pytest.raises(ConfigError, match="--latency must be a finite number"):
        SyntheticConfig(latency_s=float("nan"))
    with pytest.raises(ConfigError, match="--branching must be at least 1"):
        SyntheticConfig(branching=0)
    with pytest.raises(ConfigError, match="unknown setting 'branchin'; did you mean 'branching'"):
        RunConfig.from_dict({"env": {"name": "synthetic", "branchin": 3}})
    with pytest.raises(ConfigError, match="--branching is a setting of the synthetic environment"):
        apply_flags(RunConfig.from_dict({"env": {"name": "replay"}}), {"--branching": 3})


def test_settings_base_validates_subclasses_it_does_not_know():
    @dataclass(frozen=True)
    class Odd(Settings):
        ratio: float = setting(0.5, "A ratio.", min=0, max=1)
        mode: str = setting("a", "A mode.", choices=("a", "b"))

    assert Odd(ratio=1).ratio == 1.0  # an int where a float is asked is fine
    with pytest.raises(ValueError, match="--mode cannot be 'c'"):
        Odd(mode="c")


def test_training_and_iteration_settings_are_the_flags_of_their_commands():
    """train-policy, train-critic and iterate take their training flags from TrainOptions and
    IterateOptions: each setting once, with its help; iterate renames those a run's flag uses."""
    from prover.cli import cli
    from prover.learn.iterate import IterateOptions
    from prover.learn.training import TrainOptions
    from prover.settings import setting_fields

    def flags_of(command: str) -> dict[str, str]:
        params = cli.commands[command].params
        opts = [opt for p in params for opt in p.opts]
        assert len(opts) == len(set(opts)), f"{command} has a flag twice"
        return {opt: p.help or "" for p in params for opt in p.opts}

    train_policy, train_critic, iterate = flags_of("train-policy"), flags_of("train-critic"), flags_of("iterate")
    renamed = IterateOptions.train_flags()
    assert renamed["seed"] == "--train-seed" and "--seed" in iterate  # --seed is the policy's there
    for f in setting_fields(TrainOptions):
        assert f.metadata["help"] in train_policy[flag_of(f)]
        if f.name != "prompt":
            assert f.metadata["help"] in train_critic[flag_of(f)]
        if f.name not in IterateOptions.TRAIN_FIXED:
            assert f.metadata["help"] in iterate[renamed.get(f.name, flag_of(f))]
    for f in setting_fields(IterateOptions):
        assert f.metadata["help"] in iterate[flag_of(f)]
    # One default per setting: train-policy and iterate share them.
    assert TrainOptions().steps == IterateOptions().train.steps


def test_iteration_settings_round_trip_and_name_what_differs():
    from prover.learn.iterate import IterateOptions
    from prover.learn.training import TrainOptions
    from prover.settings import differences, from_dict

    options = IterateOptions(valid_fraction=0.25, train=TrainOptions(steps=20, lora=True))
    saved = json.loads(json.dumps(options.to_dict()))
    assert saved["train"]["steps"] == 20 and saved["valid_fraction"] == 0.25
    again = dataclasses.replace(
        from_dict(IterateOptions, {k: v for k, v in saved.items() if k != "train"}, "x"),
        train=from_dict(TrainOptions, saved["train"], "x"),
    )
    assert again == options
    assert differences(options.train, TrainOptions(steps=30, lora=True)) == ["--steps 30 (it was 20)"]
    with pytest.raises(ValueError, match="--steps must be at least 1"):
        TrainOptions(steps=0)
