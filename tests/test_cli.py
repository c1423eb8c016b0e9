"""The ``prover`` command as a user runs it: exit codes, messages, --help, --config, --resume.

Most tests call ``prover.cli.main([...])`` in this process (fast); the few that need a real
process (an uncaught traceback, ``python -m prover.cli``) run a subprocess.
"""

import importlib.metadata
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass

import click
import pytest

from search import SearchTree, Theorem

from prover.cli import cli as cli_group
from prover.cli import main
from prover.config import backend_choices
from prover.run import driver as runner

# Batch runs in these tests stay in-process; the Ray path has its own tests.
IN_PROCESS = ["--num-workers", "0", "--no-progress"]


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def prover(capsys, monkeypatch):
    """``prover(*args)``: run the CLI in this process, as ``prover ARGS`` would in a shell."""
    monkeypatch.setenv("COLUMNS", "200")  # --help on one line per option

    def run(*args, check_clean=True):
        capsys.readouterr()
        try:
            main([str(arg) for arg in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out, err = capsys.readouterr()
        if check_clean:
            assert "Traceback" not in err, err
        return Result(code, out, err)

    return run


def prover_process(*args, cwd=None):
    """The CLI in a subprocess (``python -m prover.cli``)."""
    return subprocess.run(
        [sys.executable, "-m", "prover.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )


def records_of(run_dir):
    return [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]


def help_sections(text):
    """``--help`` output as {"Search options": "...", ...}."""
    sections, current = {}, None
    for line in text.splitlines():
        if line.endswith("options:") and not line.startswith(" "):
            current = line[:-1]
            sections[current] = ""
        elif current is not None:
            sections[current] += line + "\n"
    return sections


# ---- attack ---------------------------------------------------------------------------------


def test_attack_prints_the_proof_and_saves_the_tree(prover, tmp_path):
    tree_path = tmp_path / "tree.json"
    result = prover("attack", "synthetic_0002", "--tree-out", tree_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("proved synthetic_0002")
    tree = SearchTree.load(tree_path)
    assert tree.proof_tactics() == tree.graph.graph["result"]["proof"]
    for tactic in tree.proof_tactics():
        assert tactic in result.stdout
    assert f"tree saved to {tree_path}" in result.stdout


def test_attack_without_a_proof_exits_1_and_says_why(prover, tmp_path):
    result = prover(
        "attack", "synthetic_0000", "--depth", "30", "--max-expansions", "3", "--tree-out", tmp_path / "t.json"
    )
    assert result.returncode == 1
    assert "no proof of synthetic_0000: the budget ran out (max_expansions)" in result.stdout


def test_attack_on_replay_proves_a_recorded_theorem(prover, tmp_path, traces_path):
    from prover.envs.replay import ReplayEnv
    from prover.traces import load_traces

    result = prover("attack", "mathd_algebra_478", "--env", "replay", "--tree-out", tmp_path / "t.json")
    assert result.returncode == 0, result.stdout + result.stderr
    proof = SearchTree.load(tmp_path / "t.json").proof_tactics()
    assert proof and all(tactic in result.stdout for tactic in proof)
    assert ReplayEnv(load_traces(str(traces_path))).check_proof(Theorem("mathd_algebra_478"), proof) is None


# ---- bad input, errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, message",
    [
        (["attack", "mathd_algebra_47", "--env", "replay"], "did you mean 'mathd_algebra_478'"),
        (["attack", "x", "--env", "synthetc"], "Invalid value for '--env': 'synthetc' is not one of"),
        (["attack", "x", "--env", "synthetc"], "did you mean 'synthetic'"),
        (["attack", "synthetic_0000", "--policy", "fixd"], "did you mean 'fixed'"),
        (["attack", "synthetic_0000", "--max-expansions", "0"], "Invalid value for '--max-expansions'"),
        (["attack", "synthetic_0000", "--error-rate", "2"], "Invalid value for '--error-rate'"),
        (["attack", "nothing", "--benchmark", "minif2"], "did you mean 'minif2f'"),
        (["viz", "missing.json"], "cannot read tree file missing.json"),
        # hidden backends (fault injection, a sleeping policy) are not offered, nor their settings
        (["attack", "synthetic_0000", "--env", "faulty"], "Invalid value for '--env'"),
        (["attack", "synthetic_0000", "--policy", "sleeping"], "Invalid value for '--policy'"),
        (["attack", "synthetic_0000", "--crash-prob", "0.1"], "No such option '--crash-prob'"),
        # a flag of a backend the run does not use
        (
            ["attack", "mathd_algebra_478", "--env", "replay", "--branching", "3"],
            "--branching is a setting of the synthetic environment, which this run does not use",
        ),
        (["prove-split", "--resume", ".", "--out", "elsewhere"], "give either --out"),
    ],
)
def test_bad_input_gets_one_clear_sentence_and_exit_2(prover, args, message):
    result = prover(*args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert len([line for line in result.stderr.splitlines() if line.startswith(("error", "Error"))]) == 1


def test_a_malformed_trace_or_tree_file_is_refused(prover, tmp_path):
    traces = tmp_path / "traces.jsonl"
    traces.write_text('{"theorem": "t"}\n')
    result = prover("attack", "t", "--env", "replay", "--traces", traces)
    assert result.returncode == 2
    assert "line 1 of" in result.stderr and "lacks state_before, tactic" in result.stderr
    tree = tmp_path / "tree.json"
    tree.write_text('{"nodes": []}')
    result = prover("viz", tree)
    assert result.returncode == 2 and "not a search tree" in result.stderr


def test_an_internal_error_exits_3_and_points_to_debug(prover, monkeypatch, tmp_path):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug in the prover")

    monkeypatch.setattr(runner, "search_theorem", broken)  # attack looks it up when it runs
    result = prover("attack", "synthetic_0000", "--tree-out", tmp_path / "t.json")
    assert result.returncode == 3
    assert "internal error: RuntimeError: a bug in the prover" in result.stderr
    assert "run with --debug" in result.stderr


def test_debug_shows_the_traceback():
    result = prover_process("--debug", "attack", "nope")
    assert result.returncode != 0
    assert "Traceback" in result.stderr


# ---- --help and --version -------------------------------------------------------------------


@pytest.mark.parametrize("command", ["attack", "prove-split"])
def test_help_lists_the_options_under_headings_by_concern(prover, command):
    result = prover(command, "--help")
    assert result.returncode == 0
    sections = help_sections(result.stdout)
    for heading in ("Theorems options", "Search options", "Environment options", "Policy options"):
        assert heading in sections
    assert ("Ray (prove-split) options" in sections) == (command == "prove-split")
    where = {
        "--limit": "Theorems",
        "--max-expansions": "Search",
        "--scorer": "Search",
        "--depth": "Environment",
        "--traces": "Environment",
        "--tactic ": "Policy",
        "--model": "Policy",
    }
    if command == "prove-split":
        where |= {"--num-workers": "Ray (prove-split)", "--max-batch-size": "Ray (prove-split)"}
    for flag, group in where.items():
        assert re.search(rf"^\s+{re.escape(flag)}", sections[f"{group} options"], re.M), (flag, group)


@pytest.mark.parametrize("command", ["attack", "prove-split"])
def test_every_option_has_help_text(command):
    params = cli_group.commands[command].params
    options = [p for p in params if isinstance(p, click.Option)]
    assert len(options) > 30
    missing = [p.opts[0] for p in options if not (p.help or "").strip()]
    assert missing == []


@pytest.mark.parametrize("command", ["attack", "prove-split"])
def test_help_shows_the_choices_and_offers_no_hidden_backend(prover, command):
    text = prover(command, "--help").stdout
    shown = {
        flag: re.search(rf"{flag} \[([^\]]*)\]", text)
        for flag in ("--env", "--policy", "--theorem-set", "--scorer", "--prompt")
    }
    assert all(shown.values()), [flag for flag, match in shown.items() if not match]
    choices = {flag: match.group(1).split("|") for flag, match in shown.items()}
    assert choices["--env"] == backend_choices("environment")
    assert {"synthetic", "replay", "dojo", "repl"} <= set(choices["--env"])
    assert choices["--policy"] == backend_choices("policy")
    assert {"fixed", "replay", "hf", "vllm"} <= set(choices["--policy"])
    assert choices["--theorem-set"] == ["synthetic", "replay", "minif2f"]
    assert "--benchmark" not in text  # the old name of --theorem-set, still taken (saved commands), not shown
    assert set(choices["--scorer"]) >= {"cumulative", "length_normalised"}
    assert set(choices["--prompt"]) >= {"llemma", "goal_proofstep"}
    for hidden in ("faulty", "sleeping", "--crash-prob", "--inner", "--batch-latency", "--hang"):
        assert hidden not in text


def test_version_prints_the_installed_version(prover):
    result = prover("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"prover, version {importlib.metadata.version('lean-prover')}"


# ---- prove-split, --config, --resume --------------------------------------------------------


def test_prove_split_writes_a_run_directory_and_resumes(prover, tmp_path):
    out = tmp_path / "run"
    result = prover("prove-split", "--num-theorems", "8", "--out", out, *IN_PROCESS)
    assert result.returncode == 0, result.stderr
    records = records_of(out)
    assert [r["theorem"] for r in records] == [f"synthetic_{i:04d}" for i in range(8)]
    summary = json.loads((out / "summary.json").read_text())
    proved = sum(r["status"] == "proved" for r in records)
    assert summary["num_theorems"] == 8 and summary["pass_rate"] == proved / 8
    assert f"proved {proved} of 8" in result.stdout
    assert len(list((out / "trees").glob("*.json.gz"))) == 8
    # the same directory again as a new run is refused; --resume redoes nothing
    refused = prover("prove-split", "--out", out, *IN_PROCESS)
    assert refused.returncode == 2 and f"--resume {out}" in refused.stderr
    lines = (out / "results.jsonl").read_text().splitlines()
    (out / "results.jsonl").write_text("\n".join(lines[:5]) + "\n")
    result = prover("prove-split", "--resume", out, "--no-progress")
    assert result.returncode == 0, result.stderr
    assert (out / "results.jsonl").read_text().splitlines()[:5] == lines[:5]
    assert [r["theorem"] for r in records_of(out)] == [r["theorem"] for r in records]


CONFIG_FILES = {
    "json": json.dumps(
        {
            "env": {"name": "synthetic", "depth": 2, "branching": 3},
            "limits": {"max_expansions": 7},
            "theorems": {"num_theorems": 3},
            "distributed": {"num_workers": 0},
        }
    ),
    "toml": """
[env]
name = "synthetic"
depth = 2
branching = 3

[limits]
max_expansions = 7

[theorems]
num_theorems = 3

[distributed]
num_workers = 0
""",
}


@pytest.mark.parametrize("suffix", ["json", "toml"])
def test_config_file_gives_the_settings_and_flags_override_it(prover, tmp_path, suffix):
    config_file = tmp_path / f"settings.{suffix}"
    config_file.write_text(CONFIG_FILES[suffix])
    out = tmp_path / "run"
    result = prover("prove-split", "--config", config_file, "--max-expansions", "9", "--out", out, "--no-progress")
    assert result.returncode == 0, result.stderr
    saved = json.loads((out / "config.json").read_text())
    assert (saved["env"]["name"], saved["env"]["depth"], saved["env"]["branching"]) == ("synthetic", 2, 3)
    assert saved["limits"]["max_expansions"] == 9  # the flag, over the file's 7
    assert saved["theorems"]["num_theorems"] == 3 and saved["distributed"]["num_workers"] == 0
    assert saved["policy"]["name"] == "fixed"  # the default where the file names none
    assert len(records_of(out)) == 3


def test_a_runs_config_json_fed_back_with_config_reproduces_the_run(prover, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    made = prover(
        "prove-split",
        "--env",
        "replay",
        "--limit",
        "4",
        "--max-expansions",
        "10",
        "--scorer",
        "length_normalised",
        "--tactics-per-node",
        "4",
        "--out",
        first,
        *IN_PROCESS,
    )
    assert made.returncode == 0, made.stderr
    again = prover("prove-split", "--config", first / "config.json", "--out", second, "--no-progress")
    assert again.returncode == 0, again.stderr
    settings = [json.loads((run / "config.json").read_text()) for run in (first, second)]
    for saved in settings:  # where each run came from (its time, its command line) differs
        assert saved.pop("provenance")["command_line"].startswith("prover prove-split")
    assert settings[0] == settings[1]
    outcome = {"status", "proof", "theorem", "num_expansions"}
    assert [{k: r[k] for k in outcome} for r in records_of(second)] == [
        {k: r[k] for k in outcome} for r in records_of(first)
    ]


def test_a_bad_config_file_is_refused_with_what_is_wrong(prover, tmp_path):
    typo = tmp_path / "typo.json"
    typo.write_text(json.dumps({"env": {"name": "synthetc"}}))
    result = prover("attack", "synthetic_0000", "--config", typo)
    assert result.returncode == 2 and "unknown environment 'synthetc'; did you mean 'synthetic'" in result.stderr
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[limits]\nmax_expansion = 3\n")
    result = prover("attack", "synthetic_0000", "--config", unknown)
    assert result.returncode == 2 and "unknown setting 'max_expansion'" in result.stderr
    assert "did you mean 'max_expansions'" in result.stderr


@pytest.fixture
def finished_run(prover, tmp_path):
    """A finished in-process run of 4 synthetic theorems made with --max-expansions 100."""
    out = tmp_path / "run"
    result = prover("prove-split", "--num-theorems", "4", "--max-expansions", "100", "--out", out, *IN_PROCESS)
    assert result.returncode == 0, result.stderr
    return out


@pytest.mark.parametrize(
    "flags, named",
    [
        (["--max-expansions", "5"], "--max-expansions 5 (the run used 100)"),
        (["--depth", "9", "--num-workers", "0"], "--depth 9 (the run used 5)"),
        (["--env", "replay"], "--env replay (the run used synthetic)"),
    ],
)
def test_resume_refuses_a_flag_that_would_change_the_run_and_touches_nothing(prover, finished_run, flags, named):
    files = {name: (finished_run / name).read_bytes() for name in ("results.jsonl", "config.json", "summary.json")}
    result = prover("prove-split", "--resume", finished_run, "--no-progress", *flags)
    assert result.returncode == 2
    assert named in result.stderr and "--resume keeps the settings" in result.stderr
    assert {name: (finished_run / name).read_bytes() for name in files} == files


def test_resume_allows_the_ray_settings_to_change_and_records_them(prover, finished_run):
    # as if the run had been started on Ray with 2 workers and stopped after 2 theorems
    config = json.loads((finished_run / "config.json").read_text())
    config["distributed"]["num_workers"] = 2
    (finished_run / "config.json").write_text(json.dumps(config))
    lines = (finished_run / "results.jsonl").read_text().splitlines(keepends=True)
    (finished_run / "results.jsonl").write_text("".join(lines[:2]))

    result = prover(
        "prove-split",
        "--resume",
        finished_run,
        "--num-workers",
        "0",
        "--max-retries",
        "5",
        "--max-expansions",
        "100",
        "--no-progress",
    )  # the same budget as saved: no conflict
    assert result.returncode == 0, result.stderr
    saved = json.loads((finished_run / "config.json").read_text())
    assert saved["distributed"]["num_workers"] == 0 and saved["distributed"]["max_retries"] == 5
    assert {k: v for k, v in saved.items() if k != "distributed"} == {
        k: v for k, v in config.items() if k != "distributed"
    }
    assert (finished_run / "results.jsonl").read_text().startswith("".join(lines[:2]))
    assert [r["theorem"] for r in records_of(finished_run)] == [f"synthetic_{i:04d}" for i in range(4)]


def test_resume_refuses_a_config_file(prover, finished_run, tmp_path):
    config_file = tmp_path / "c.json"
    config_file.write_text("{}")
    result = prover("prove-split", "--resume", finished_run, "--config", config_file)
    assert result.returncode == 2 and "--config sets up a new run" in result.stderr


# ---- viz ------------------------------------------------------------------------------------


def test_viz_renders_a_saved_tree_as_text(prover, tmp_path):
    tree_path = tmp_path / "tree.json"
    assert prover("attack", "synthetic_0002", "--tree-out", tree_path).returncode == 0
    result = prover("viz", tree_path, "--format", "text")
    assert result.returncode == 0, result.stderr
    tree = SearchTree.load(tree_path)
    assert result.stdout.startswith(f"theorem synthetic_0002: proved, {tree.num_states} states")
    assert result.stdout.count("*") == len(tree.proof_tactics())
