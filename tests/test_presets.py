"""Presets: one switch for a published system's policy, prompt, decoding and budget.

``prover presets NAME`` prints what a preset sets; ``--preset NAME`` applies it under the
flags given; a run's config.json holds the resolved settings; and the tiny Llama, saved
like a hub model, runs every preset's prompt path end to end on the replay environment.
"""

from __future__ import annotations

import json

import pytest

from prover.cli import main
from prover.config import RunConfig
from prover.policies.hf import HFPolicy
from prover.policies.prompts import PROMPTS
from prover.presets import PRESETS, apply_preset, get_preset, resolved_settings

from tests.tiny_llama import save_tiny_llama

REQUIRED_KEYS = {
    "model",
    "prompt",
    "decoding",
    "tactics_per_node",
    "max_new_tokens",
    "stop",
    "tactic_score",
    "scorer",
    "max_expansions",
    "time_limit_s",
}


def run_cli(capsys, *args) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        main([str(arg) for arg in args])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def test_prover_presets_llemma_f2f_prints_the_papers_settings(capsys):
    code, out, _ = run_cli(capsys, "presets", "llemma-f2f")
    assert code == 0
    settings = json.loads(out)
    assert REQUIRED_KEYS <= set(settings)
    assert {key: settings[key] for key in REQUIRED_KEYS} == {
        "model": "EleutherAI/llemma_7b",
        "prompt": "llemma",
        "decoding": "beam",
        "tactics_per_node": 32,
        "max_new_tokens": 256,
        "stop": ["---"],
        "tactic_score": "mean_logprob_per_token",  # cumulative log-prob / generated tokens
        "scorer": "cumulative",  # a state's priority: the sum of those means along its path
        "max_expansions": 100,
        "time_limit_s": 600.0,
    }
    assert settings["reported_minif2f_test"].startswith("26.23%")


def test_prover_presets_lists_every_preset_on_one_line(capsys):
    code, out, _ = run_cli(capsys, "presets")
    lines = out.strip().splitlines()
    assert code == 0 and len(lines) == len(PRESETS)
    for name, line in zip(PRESETS, lines):
        assert line.split()[0] == name and PRESETS[name].summary in line


def test_an_unknown_preset_is_one_sentence_with_a_suggestion(capsys):
    code, _, err = run_cli(capsys, "presets", "lemma-f2f")
    assert code == 2 and "unknown preset 'lemma-f2f'; did you mean 'llemma-f2f'?" in err
    code, _, err = run_cli(capsys, "attack", "x", "--preset", "bfs-prover")
    assert code == 2 and "did you mean" in err


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_resolves_to_valid_settings_with_its_sources(name):
    preset = get_preset(name)
    for policy in ("hf", "vllm"):
        settings = resolved_settings(name, policy)
        assert REQUIRED_KEYS <= set(settings) and settings["policy"] == policy
        assert settings["prompt"] in PROMPTS and settings["stop"] == list(PROMPTS[settings["prompt"]].stop)
    assert preset.source and preset.description and preset.reported_minif2f_test
    json.dumps(resolved_settings(name))


def test_the_step_provers_say_what_their_cards_leave_out():
    for name in ("bfs-prover-v1", "bfs-prover-v2-7b", "bfs-prover-v2-32b"):
        description = get_preset(name).description
        assert "Not on the card" in description and "stop string" in description and "time limit" in description
    assert "filled as the script fills them" in get_preset("internlm2.5-stepprover").description


def test_a_preset_is_applied_on_top_of_a_config_and_under_the_flags(capsys, tmp_path, monkeypatch):
    # The policy of a replay run is the replay policy; the preset makes it hf.
    config = apply_preset(
        RunConfig.from_dict({"env": {"name": "replay"}, "policy": {"name": "replay"}}), "llemma-34b-f2f"
    )
    assert config.policy.name == "hf" and config.policy.options.model == "EleutherAI/llemma_34b"
    assert config.env.name == "replay"
    # --policy vllm keeps vllm, with the preset's vLLM settings too.
    vllm = apply_preset(RunConfig.from_dict({"policy": {"name": "vllm"}}), "llemma-34b-f2f")
    assert vllm.policy.name == "vllm" and vllm.policy.options.tensor_parallel_size == 2
    # Through the command line, flags win over the preset (the model is not loaded here).
    import prover.policies
    import prover.run.driver
    from prover.policies.fixed import FixedPolicy

    seen = []
    search = prover.run.driver.search_theorem
    monkeypatch.setattr(prover.policies, "make_policy", lambda spec: FixedPolicy())
    monkeypatch.setattr(
        prover.run.driver,
        "search_theorem",
        lambda target, policy, config, **kwargs: seen.append(config) or search(target, policy, config, **kwargs),
    )
    code, _, err = run_cli(
        capsys,
        "attack",
        "mathd_algebra_478",
        "--env",
        "replay",
        "--preset",
        "llemma-f2f",
        "--max-expansions",
        "7",
        "--decoding",
        "sampling",
        "--tree-out",
        tmp_path / "t.json",
    )
    assert code in (0, 1), err
    (config,) = seen
    assert (config.policy.name, config.policy.options.prompt, config.policy.options.decoding) == (
        "hf",
        "llemma",
        "sampling",
    )
    assert (config.limits.max_expansions, config.limits.tactics_per_node, config.limits.time_limit_s) == (7, 32, 600.0)
    assert config.search.scorer == "cumulative" and config.policy.options.length_normalise
    code, _, err = run_cli(
        capsys, "attack", "mathd_algebra_478", "--env", "replay", "--policy", "fixed", "--preset", "llemma-f2f"
    )
    assert code == 2 and "--preset llemma-f2f sets up a model policy (hf or vllm), not --policy fixed" in err


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return save_tiny_llama(tmp_path_factory.mktemp("tiny-llama-presets"))


def test_a_preset_runs_records_its_resolved_settings_in_config_json(capsys, tmp_path, tiny_dir):
    run = tmp_path / "run"
    code, _, err = run_cli(
        capsys,
        "prove-split",
        "--env",
        "replay",
        "--preset",
        "llemma-f2f",
        "--model",
        tiny_dir,
        "--device",
        "cpu",
        "--limit",
        "1",
        "--max-expansions",
        "1",
        "--tactics-per-node",
        "2",
        "--max-new-tokens",
        "4",
        "--num-workers",
        "0",
        "--no-progress",
        "--out",
        run,
    )
    assert code == 0, err
    saved = json.loads((run / "config.json").read_text())
    assert saved["policy"]["name"] == "hf" and saved["policy"]["model"] == str(tiny_dir)
    assert (saved["policy"]["prompt"], saved["policy"]["decoding"], saved["policy"]["length_normalise"]) == (
        "llemma",
        "beam",
        True,
    )
    assert saved["limits"]["max_expansions"] == 1 and saved["limits"]["time_limit_s"] == 600.0
    assert saved["search"]["scorer"] == "cumulative"
    assert not any("preset" in key for section in saved.values() if isinstance(section, dict) for key in section)
    code, _, err = run_cli(capsys, "prove-split", "--resume", run, "--preset", "llemma-f2f")
    assert code == 2 and "--preset sets up a new run" in err


@pytest.mark.parametrize("name", list(PRESETS))
def test_the_tiny_model_runs_each_presets_prompt_path_end_to_end(capsys, tmp_path, tiny_dir, monkeypatch, name):
    """``prover attack mathd_algebra_478 --env replay --preset NAME --model TINY``: the tiny
    Llama stands in for the preset's model through the same ``from_pretrained`` path; the
    prompts it gets are the preset's format, and the search ends normally (proved or not)."""
    rendered = []
    propose = HFPolicy.propose_in_context

    def spy(self, states, contexts, k):
        rendered.append(
            (self.format.name, self.config.decoding, k, self.render(states[0], contexts[0]), states[0], contexts[0])
        )
        return propose(self, states, contexts, k)

    monkeypatch.setattr(HFPolicy, "propose_in_context", spy)
    code, out, err = run_cli(
        capsys,
        "attack",
        "mathd_algebra_478",
        "--env",
        "replay",
        "--preset",
        name,
        "--model",
        tiny_dir,
        "--device",
        "cpu",
        "--max-expansions",
        "2",
        "--max-new-tokens",
        "6",
        "--tactics-per-node",
        "3",
        "--tree-out",
        tmp_path / "tree.json",
    )
    assert code in (0, 1), err
    assert "Traceback" not in err and (tmp_path / "tree.json").exists()
    preset = get_preset(name)
    assert rendered, "the policy was asked for tactics"
    for fmt, decoding, k, prompt, state, context in rendered:
        assert (fmt, decoding, k) == (preset.prompt, preset.decoding, 3)
        assert prompt == PROMPTS[preset.prompt].render(state, context)
        assert context.theorem_name == "mathd_algebra_478"
