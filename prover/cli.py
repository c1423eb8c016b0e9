"""The ``prover`` command line: attack one theorem, prove a set in batch, show a tree.

    prover attack synthetic_0002
    prover prove-split --out runs/demo
    prover viz runs/demo/trees/synthetic_0002.json

Exit codes: 0 done (for ``attack``: proved), 1 ``attack`` found no proof, 2 bad input or
a missing dependency (one sentence on stderr), 3 an internal error, 130 interrupted.
Errors show a traceback only with ``--debug``.
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

import click

from prover.config import EnvConfig, PolicyConfig, RunConfig, TheoremSetConfig
from prover.errors import ProverError
from search import SCORERS, SearchLimits

# The policy an environment gets when no --policy is given.
DEFAULT_POLICY = {"synthetic": "fixed", "replay": "replay", "dojo": "hf", "repl": "hf"}

EXIT_NOT_PROVED, EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_INTERRUPTED = 1, 2, 3, 130


def _apply(options, function):
    for option in reversed(options):
        function = option(function)
    return function


def env_options(function):
    d = EnvConfig()
    return _apply(
        [
            click.option("--env", "env_name", default="synthetic", show_default=True,
                         help="Proof environment: synthetic, replay, dojo (LeanDojo) or repl (Lean REPL)."),
            click.option("--traces", type=click.Path(dir_okay=False), default=None,
                         help="Trace file for the replay environment and policy [default: shared miniF2F traces]."),
            click.option("--branching", type=click.IntRange(min=1), default=d.branching, show_default=True,
                         help="Synthetic: distinct child states per state."),
            click.option("--depth", type=click.IntRange(min=1), default=d.depth, show_default=True,
                         help="Synthetic: length of the shortest proof."),
            click.option("--proof-density", type=click.FloatRange(0, 1), default=d.proof_density,
                         show_default=True, help="Synthetic: chance that a child state makes progress."),
            click.option("--error-rate", type=click.FloatRange(0, 1), default=d.error_rate, show_default=True,
                         help="Synthetic: chance that a tactic fails."),
            click.option("--latency", "latency_s", type=click.FloatRange(min=0), default=d.latency_s,
                         show_default=True, help="Synthetic: seconds each tactic takes."),
            click.option("--env-seed", type=int, default=d.seed, show_default=True, help="Synthetic: seed."),
            click.option("--lean-project", type=click.Path(file_okay=False), default=d.lean_project,
                         help="Lean: the Lake project that holds the theorems' dependencies."),
            click.option("--tactic-timeout", "tactic_timeout_s", type=click.FloatRange(min=0, min_open=True),
                         default=d.tactic_timeout_s, show_default=True, help="Lean: seconds per tactic."),
            click.option("--memory-limit-mb", type=click.IntRange(min=256), default=d.memory_limit_mb,
                         show_default=True, help="Lean REPL: memory limit of the Lean process."),
            click.option("--allow-native-decide", is_flag=True, help="Lean: let the policy use native_decide."),
        ],
        function,
    )


def policy_options(function):
    d = PolicyConfig()
    return _apply(
        [
            click.option("--policy", "policy_name", default=None,
                         help="Tactic policy: fixed, replay, hf (transformers) or vllm "
                              "[default: fixed for synthetic, replay for replay, hf for Lean]."),
            click.option("--tactic", "tactics", multiple=True,
                         help="Fixed policy: a tactic, optionally scored as TACTIC:LOGPROB (repeatable)."),
            click.option("--model", default=d.model, show_default=True,
                         help="hf/vllm: Hugging Face model id or local path."),
            click.option("--prompt", type=click.Choice(["llemma", "goal_proofstep"]), default=d.prompt,
                         show_default=True, help="hf/vllm: prompt format."),
            click.option("--decoding", type=click.Choice(["sampling", "beam"]), default=d.decoding,
                         show_default=True, help="hf/vllm: how the k candidates are drawn."),
            click.option("--temperature", type=click.FloatRange(min=0), default=d.temperature, show_default=True),
            click.option("--top-p", type=click.FloatRange(0, 1, min_open=True), default=d.top_p, show_default=True),
            click.option("--max-new-tokens", type=click.IntRange(min=1), default=d.max_new_tokens, show_default=True),
            click.option("--max-prompt-tokens", type=click.IntRange(min=16), default=d.max_prompt_tokens,
                         show_default=True),
            click.option("--length-normalise", is_flag=True, help="hf/vllm: score tactics by mean token log-prob."),
            click.option("--device", default=d.device, show_default=True, help="hf: auto, cpu, cuda or cuda:N."),
            click.option("--seed", type=int, default=d.seed, show_default=True, help="Policy sampling seed."),
        ],
        function,
    )


def search_options(function):
    d = SearchLimits()
    return _apply(
        [
            click.option("--max-expansions", type=click.IntRange(min=1), default=d.max_expansions,
                         show_default=True, help="Budget: states expanded per theorem."),
            click.option("--time-limit", "time_limit_s", type=click.FloatRange(min=0, min_open=True),
                         default=d.time_limit_s, show_default=True, help="Budget: seconds per theorem."),
            click.option("--tactics-per-node", type=click.IntRange(min=1), default=d.tactics_per_node,
                         show_default=True, help="Tactics proposed and tried per state."),
            click.option("--scorer", type=click.Choice(sorted(SCORERS)), default="cumulative", show_default=True,
                         help="Priority of open states."),
        ],
        function,
    )


def theorem_set_options(function):
    return _apply(
        [
            click.option("--benchmark", default=None,
                         help="Theorem set: synthetic, replay or minif2f [default: the environment's own]."),
            click.option("--split", type=click.Choice(["valid", "test"]), default="valid", show_default=True),
            click.option("--theorems-file", type=click.Path(dir_okay=False), default=None,
                         help="A file listing theorems, one name (or JSON object) per line."),
            click.option("--num-theorems", type=click.IntRange(min=1), default=20, show_default=True,
                         help="Size of the synthetic theorem set."),
        ],
        function,
    )


def build_run_config(options: dict) -> RunConfig:
    """A RunConfig from the parsed flags of any command that searches."""
    from prover.registry import ENVS, POLICIES, check_name

    check_name("environment", options["env_name"], ENVS)
    if options["policy_name"]:
        check_name("policy", options["policy_name"], POLICIES)
    env = EnvConfig(
        name=options["env_name"], traces=options["traces"], branching=options["branching"],
        depth=options["depth"], proof_density=options["proof_density"], error_rate=options["error_rate"],
        latency_s=options["latency_s"], seed=options["env_seed"], lean_project=options["lean_project"],
        tactic_timeout_s=options["tactic_timeout_s"], memory_limit_mb=options["memory_limit_mb"],
        allow_native_decide=options["allow_native_decide"],
    )
    policy = PolicyConfig(
        name=options["policy_name"] or DEFAULT_POLICY.get(env.name, "fixed"), tactics=tuple(options["tactics"]),
        traces=options["traces"], model=options["model"], prompt=options["prompt"],
        decoding=options["decoding"], temperature=options["temperature"], top_p=options["top_p"],
        max_new_tokens=options["max_new_tokens"], max_prompt_tokens=options["max_prompt_tokens"],
        length_normalise=options["length_normalise"], device=options["device"], seed=options["seed"],
    )
    theorems = TheoremSetConfig(
        benchmark=options["benchmark"], split=options["split"], theorems_file=options["theorems_file"],
        num_theorems=options["num_theorems"], limit=options.get("limit"),
    )
    limits = SearchLimits(
        max_expansions=options["max_expansions"], time_limit_s=options["time_limit_s"],
        tactics_per_node=options["tactics_per_node"],
    )
    return RunConfig(env=env, policy=policy, theorems=theorems, limits=limits, scorer=options["scorer"])


@click.group(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.option("--debug", is_flag=True, help="Show tracebacks of errors.")
def cli(debug: bool) -> None:
    """Best-first Lean 4 proof search with a language-model tactic policy."""


@cli.command()
@click.argument("theorem", required=False)
@click.option("--statement", default=None,
              help='A theorem typed in, e.g. "theorem foo (x : ℕ) : x + 0 = x :=" (THEOREM may then be left out).')
@env_options
@policy_options
@search_options
@theorem_set_options
@click.option("--tree-out", type=click.Path(dir_okay=False), default=None,
              help="Where to save the search tree [default: runs/attack/<theorem>.json].")
def attack(theorem: str | None, statement: str | None, tree_out: str | None, **options) -> None:
    """Search for a proof of THEOREM (or of --statement) and print it."""
    from prover.benchmarks import find_theorem
    from prover.policies import make_policy
    from prover.runner import result_record, search_theorem
    from prover.runs import tree_filename
    from prover.statements import parse_statement

    config = build_run_config(options)
    if statement is not None:
        target = parse_statement(statement)
        if theorem and theorem != target.name:
            raise ProverError(f"THEOREM '{theorem}' is not the name in --statement ('{target.name}'); give one of them")
    elif theorem:
        target = find_theorem(theorem, config.theorems, config.env)
    else:
        raise ProverError('name a THEOREM, or type one in with --statement "theorem foo ... :="')
    policy = make_policy(config.policy)
    result = search_theorem(target, policy, config)
    record = result_record(target, result)
    path = Path(tree_out) if tree_out else Path("runs") / "attack" / tree_filename(target.name)
    if result.tree is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        result.tree.save(path, extra=record)
    stats = (f"{result.num_expansions} expansions, {result.num_tactics} tactics, "
             f"{result.num_states} states, {result.wall_time_s:.2f} s")
    if result.proved:
        click.echo(f"proved {target.name} ({stats}):")
        click.echo(record.get("proof_text") or "\n".join(result.proof or []))
    else:
        reason = result.error or {
            "failed": "every tactic the policy proposed failed",
            "open": f"the budget ran out ({result.stop_reason})",
        }.get(result.status.value, result.status.value)
        click.echo(f"no proof of {target.name}: {reason} ({stats})")
    if result.tree is not None:
        click.echo(f"tree saved to {path}")
    if not result.proved:
        sys.exit(EXIT_NOT_PROVED)


# prove-split's Ray flags -> DistributedConfig field
DISTRIBUTED_FLAGS = ("ray_address", "num_workers", "searches_per_worker", "worker_cpus", "policy_gpus",
                     "max_batch_size", "max_wait_ms", "max_retries")


def distributed_options(function):
    from prover.distributed import DistributedConfig  # imports no Ray

    d = DistributedConfig()
    return _apply(
        [
            click.option("--ray-address", default=None,
                         help="Join a running Ray cluster: auto or HOST:PORT [default: a local Ray on this machine]."),
            click.option("--num-workers", type=click.IntRange(min=0), default=None,
                         help="Ray search workers; 0 runs everything in this process [default: one per "
                              "--worker-cpus of the cluster's CPUs]."),
            click.option("--searches-per-worker", type=click.IntRange(min=1), default=d.searches_per_worker,
                         show_default=True, help="Concurrent searches (threads) in each worker."),
            click.option("--worker-cpus", type=click.FloatRange(min=0), default=d.worker_cpus, show_default=True,
                         help="CPUs Ray reserves for each search worker."),
            click.option("--policy-gpus", type=click.FloatRange(min=0), default=None,
                         help="GPUs Ray reserves for the policy server [default: 1 where the cluster has one]."),
            click.option("--max-batch-size", type=click.IntRange(min=1), default=d.max_batch_size,
                         show_default=True, help="Policy server: most states in one batch."),
            click.option("--max-wait-ms", type=click.FloatRange(min=0), default=d.max_wait_ms, show_default=True,
                         help="Policy server: how long a batch waits for more requests."),
            click.option("--max-retries", type=click.IntRange(min=0), default=d.max_retries, show_default=True,
                         help="Extra attempts for a theorem whose worker died, before it is recorded as an error."),
        ],
        function,
    )


def _distributed_config(saved, options: dict):
    """The run's DistributedConfig: the saved one (on --resume) with the flags given now on top."""
    from click.core import ParameterSource

    from prover.distributed import DistributedConfig

    context = click.get_current_context()
    given = {name: options[name] for name in DISTRIBUTED_FLAGS
             if saved is None or context.get_parameter_source(name) is ParameterSource.COMMANDLINE}
    return replace(saved, **given) if saved is not None else DistributedConfig(**given)


@cli.command("prove-split")
@env_options
@policy_options
@search_options
@theorem_set_options
@distributed_options
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Prove only the first N theorems.")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="New run directory [default: runs/<benchmark>-<time>].")
@click.option("--resume", type=click.Path(file_okay=False, exists=True), default=None,
              help="Continue the run in this directory with its saved config, skipping finished theorems.")
@click.option("--progress/--no-progress", default=True, help="Show a progress bar.")
def prove_split(out: str | None, resume: str | None, progress: bool, **options) -> None:
    """Prove a theorem set in batch into a run directory (resumable)."""
    from prover.benchmarks import DEFAULT_BENCHMARK, load_theorems
    from prover.policies import make_policy
    from prover.runner import prove_locally
    from prover.runs import RunDir

    if resume and out:
        raise ProverError("give either --out (a new run) or --resume (an existing run), not both")
    if resume:
        run = RunDir.open(resume)
        config = run.config()
        dist = _distributed_config(config.distributed, options)
    else:
        dist = _distributed_config(None, options)
        config = replace(build_run_config(options), distributed=dist)
        name = config.theorems.benchmark or DEFAULT_BENCHMARK.get(config.env.name, "run")
        run = RunDir.create(out or Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}", config)
    theorems = load_theorems(config.theorems, config.env)
    click.echo(f"run directory: {run.path} ({len(theorems)} theorems)", err=True)
    try:
        if dist.num_workers == 0:  # in-process: one search at a time, easy to debug
            summary = prove_locally(theorems, make_policy(config.policy), config, run, show_progress=progress)
        else:
            from prover.distributed import prove_distributed

            summary = prove_distributed(theorems, config, run, dist, show_progress=progress)
    except KeyboardInterrupt:
        done = len(run.finished())
        click.echo(f"\ninterrupted: {done} of {len(theorems)} theorems are saved in {run.path}; "
                   f"continue with: prover prove-split --resume {run.path}", err=True)
        sys.exit(EXIT_INTERRUPTED)
    click.echo(
        f"proved {summary['num_proved']} of {summary['num_theorems']} "
        f"(pass rate {summary['pass_rate']:.1%}); results in {run.results_path}"
    )


@cli.command()
@click.argument("tree_file", type=click.Path(dir_okay=False))
@click.option("--format", "output_format", type=click.Choice(["html", "text", "svg", "png", "graphml"]),
              default="html", show_default=True,
              help="html: a page to explore in a browser (offline); text: an outline here; svg/png: a picture; "
                   "graphml: for other graph tools.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="Where to write [default: TREE_FILE with the format's suffix; text is printed].")
@click.option("--max-nodes", type=click.IntRange(min=1), default=200, show_default=True,
              help="svg/png: most states drawn (the proof path and the first expanded).")
@click.option("--show-failed", is_flag=True, help="text: list every failed tactic instead of counting them.")
@click.option("--max-lines", type=click.IntRange(min=1), default=400, show_default=True, help="text: most lines.")
def viz(tree_file: str, output_format: str, output: str | None, max_nodes: int, show_failed: bool,
        max_lines: int) -> None:
    """Show a saved search tree: an HTML page (default), text, an SVG/PNG picture or GraphML."""
    from prover.viz import render_html, render_image, render_text, write_graphml
    from search import SearchTree

    tree = SearchTree.load(tree_file)
    if output_format == "text" and output is None:
        click.echo(render_text(tree, show_failed=show_failed, max_lines=max_lines))
        return
    path = Path(output) if output else Path(tree_file).with_suffix("." + output_format)
    path.parent.mkdir(parents=True, exist_ok=True)
    if output_format == "text":
        path.write_text(render_text(tree, show_failed=show_failed, max_lines=max_lines) + "\n", encoding="utf-8")
    elif output_format == "html":
        path.write_text(render_html(tree), encoding="utf-8")
    elif output_format == "graphml":
        write_graphml(tree, path)
    else:
        render_image(tree, path, max_nodes=max_nodes, image_format=output_format)
    click.echo(f"wrote {path}")


@cli.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.argument("other_run_dir", type=click.Path(file_okay=False), required=False)
@click.option("--output", "-o", type=click.Path(file_okay=False), default=None,
              help="Directory for report.md, report.json and the plots [default: RUN_DIR/report].")
def report(run_dir: str, other_run_dir: str | None, output: str | None) -> None:
    """Summarise a run directory, or compare it with OTHER_RUN_DIR: pass rate, counts, costs, plots."""
    from rich.console import Console

    from prover.report import comparison_lines, load_run, summary_table, write_report

    runs = [load_run(run_dir)] + ([load_run(other_run_dir)] if other_run_dir else [])
    out_dir = Path(output) if output else Path(run_dir) / "report"
    written = write_report(runs, out_dir)
    console = Console()
    console.print(summary_table(written))
    for line in comparison_lines(written):
        console.print(line, highlight=False, markup=False)
    click.echo(f"report written to {out_dir / 'report.md'} (with report.json and plots)")


@cli.command("setup-lean")
@click.option("--lean-project", type=click.Path(file_okay=False), default=EnvConfig().lean_project,
              help="The Lake project to set up [default: the repository's lean_project/].")
@click.option("--skip-repl", is_flag=True, help="Do not fetch and build the Lean REPL (needed only by --env repl).")
def setup_lean(lean_project: str, skip_repl: bool) -> None:
    """Get Mathlib's cache and build lean_project/ (runs `lake exe cache get`, `lake build`); needs elan."""
    from prover.lean_setup import prepare_repl, setup_lean_project

    setup_lean_project(lean_project, repl=None if skip_repl else prepare_repl, echo=click.echo)


@cli.command("train-policy")
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Directory for the trained model.")
@click.option("--traces", type=click.Path(dir_okay=False), default=None,
              help="Trace file of (state, tactic) pairs [default: shared miniF2F traces].")
@click.option("--steps", type=click.IntRange(min=1), default=1200, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--prompt", type=click.Choice(["goal_proofstep", "llemma"]), default="goal_proofstep",
              show_default=True, help="Prompt format to train on (the model directory remembers it).")
@click.option("--eval/--no-eval", "evaluate", default=True,
              help="Afterwards, count the replay theorems the trained policy proves.")
def train_policy(out: str, traces: str | None, steps: int, seed: int, prompt: str, evaluate: bool) -> None:
    """Train a tiny Llama policy on a trace file, on the CPU, for offline runs with --policy hf."""
    from prover.policies.train import evaluate_on_replay, train_tiny_policy

    model_dir = train_tiny_policy(traces, out, steps=steps, seed=seed, prompt=prompt, progress=click.echo)
    click.echo(f"trained policy saved to {model_dir}")
    if evaluate:
        proved, total = evaluate_on_replay(model_dir, traces)
        click.echo(f"it proves {proved} of {total} replay theorems (beam of 8, 32 expansions)")
    click.echo(f"use it with: prover attack THEOREM --env replay --policy hf --model {model_dir}")


def main(argv: list[str] | None = None) -> None:
    """Entry point: runs the CLI and turns errors into one sentence and an exit code."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        cli.main(args=args, prog_name="prover", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_BAD_INPUT)
    except (ProverError, ValueError) as exc:
        if debug:
            raise
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:
        if debug:
            raise
        click.echo(f"internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", err=True)
        sys.exit(EXIT_INTERNAL)


if __name__ == "__main__":
    main()
