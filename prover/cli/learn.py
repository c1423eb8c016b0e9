"""``prover export``, ``train-policy``, ``train-critic`` and ``iterate``: learning from
searches. The training flags come from ``TrainOptions`` and ``IterateOptions``, one
definition each (``prover.learn.training``, ``prover.learn.iterate``)."""

from __future__ import annotations

from pathlib import Path

import click

from prover.cli.options import GroupedCommand, build_run_config, class_options, class_values, option, with_settings
from prover.errors import ProverError
from prover.learn.iterate import IterateOptions
from prover.learn.training import TrainOptions


@click.command()
@click.argument(
    "run_dirs", nargs=-1, required=True, type=click.Path(file_okay=False, exists=True), metavar="RUN_DIR..."
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    required=True,
    help="Data directory to write: train.jsonl, valid.jsonl and export.json.",
)
@click.option(
    "--valid-fraction",
    type=click.FloatRange(min=0, max=1, max_open=True),
    default=0.0,
    show_default=True,
    help="Share of the theorems whose records go to valid.jsonl (split by theorem).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the train/valid split.")
@click.option(
    "--all-proving-edges",
    is_flag=True,
    help="Every tactic that led to a proved state, not only those on shortest proofs.",
)
def export(run_dirs: tuple[str, ...], out: str, valid_fraction: float, seed: int, all_proving_edges: bool) -> None:
    """Training data from the saved trees of runs: proof steps, preference pairs, failed states."""
    from prover.learn.export import export_runs

    stats = export_runs(run_dirs, out, valid_fraction=valid_fraction, seed=seed, all_proving_edges=all_proving_edges)
    for line in stats.lines():
        click.echo(line)
    click.echo(f"wrote {Path(out) / 'train.jsonl'} and valid.jsonl (format: prover/learn/export.py)")


@click.command("train-policy", cls=GroupedCommand)
@option(
    "--out", type=click.Path(file_okay=False), required=True, group="Output", help="Directory for the trained model."
)
@option(
    "--data",
    type=click.Path(exists=True),
    default=None,
    group="Data",
    help="A data directory written by prover export (its proof steps) [default: --traces].",
)
@option(
    "--traces",
    type=click.Path(dir_okay=False),
    default=None,
    group="Data",
    help="Trace file of (state, tactic) pairs [default: the shipped miniF2F traces].",
)
@class_options(TrainOptions, "train_", "Training")
@option(
    "--eval/--no-eval",
    "evaluate",
    default=None,
    group="Output",
    help="Afterwards, count the replay theorems the trained policy proves [default: on with --traces "
    "or the shipped traces, off with --data].",
)
def train_policy(out: str, data: str | None, traces: str | None, evaluate: bool | None, **options) -> None:
    """Train a tactic policy: a tiny Llama on the CPU, or --model fine-tuned (on a GPU where there is one;
    several GPUs: accelerate launch -m prover.cli train-policy ...)."""
    from prover.learn.training import evaluate_on_replay
    from prover.learn.training import train_policy as train

    if data and traces:
        raise ProverError("give --data (an export) or --traces (a trace file), not both")
    settings = class_values(TrainOptions, "train_", options, "the training settings")
    model_dir = train(data or traces, out, settings, progress=click.echo)
    click.echo(f"trained policy saved to {model_dir}")
    if evaluate if evaluate is not None else not data:
        proved, total = evaluate_on_replay(model_dir, data and Path(data) / "train.jsonl" or traces)
        click.echo(f"it proves {proved} of {total} replay theorems (beam of 8, 32 expansions)")
    click.echo(f"use it with: prover attack THEOREM --policy hf --model {model_dir}")


@click.command("train-critic", cls=GroupedCommand)
@option(
    "--out", type=click.Path(file_okay=False), required=True, group="Output", help="Directory for the trained model."
)
@option(
    "--data",
    type=click.Path(exists=True),
    required=True,
    group="Data",
    help="A data directory written by prover export: its provable and failed states.",
)
@class_options(TrainOptions, "train_", "Training", exclude=("prompt",))
def train_critic(out: str, data: str, **options) -> None:
    """Train a value model (provable or not) on exported searches, for --critic and --scorer value_mixed."""
    from prover.learn.training import train_critic as train

    settings = class_values(TrainOptions, "train_", options, "the training settings")
    model_dir = train(data, out, settings, progress=click.echo)
    click.echo(f"value model saved to {model_dir}")
    click.echo(f"use it with: prover prove-split ... --critic {model_dir} --scorer value_mixed --value-weight 1")


@click.command("iterate", cls=GroupedCommand)
@with_settings(include_distributed=True)
@option(
    "--rounds",
    type=click.IntRange(min=1),
    required=True,
    group="Iteration",
    help="Rounds of prove, export, train (finished rounds of --out are skipped).",
)
@option(
    "--out",
    type=click.Path(file_okay=False),
    required=True,
    group="Iteration",
    help="Iteration directory: round-1/, round-2/, ... (run directories) and iterate.json.",
)
@option(
    "--heldout-file",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    group="Iteration",
    help="Theorems each round's policy is also evaluated on, never trained on (a list, as --theorems-file).",
)
@option(
    "--num-heldout",
    type=click.IntRange(min=1),
    default=None,
    group="Iteration",
    help="synthetic: evaluate on this many held-out theorems (synthetic_heldout_0000, ...).",
)
@class_options(IterateOptions, "iter_", "Iteration")
@class_options(
    TrainOptions, "train_", "Training", exclude=IterateOptions.TRAIN_FIXED, flags=IterateOptions.train_flags()
)
@option(
    "--progress/--no-progress",
    default=True,
    group="Output",
    help="Show a progress bar while proving, on a terminal (the progress lines are written either way).",
)
def iterate(
    rounds: int, out: str, heldout_file: str | None, num_heldout: int | None, progress: bool, **options
) -> None:
    """Expert iteration: each round proves the theorem set, exports the proofs and trains the next policy."""
    from prover.learn.iterate import iterate as run_iteration
    from prover.run.batch import prove_batch
    from prover.theorem_sets import heldout_theorems, load_theorems, theorems_from_file

    config = build_run_config(options)
    theorems = load_theorems(config.theorems, config.env)
    heldout = None
    if heldout_file and num_heldout:
        raise ProverError("give --heldout-file or --num-heldout, not both")
    if heldout_file:
        heldout = theorems_from_file(heldout_file, config.theorems, config.env)
    elif num_heldout:
        heldout = heldout_theorems(num_heldout, config.theorems, config.env)
    train = class_values(TrainOptions, "train_", options, "the training settings")
    settings = class_values(IterateOptions, "iter_", options, "the iteration settings", train=train)
    results = run_iteration(
        config,
        theorems,
        out,
        rounds,
        settings,
        heldout,
        prove=lambda ts, cfg, run: prove_batch(ts, cfg, run, progress, echo=lambda line: click.echo(line, err=True)),
        echo=click.echo,
    )
    click.echo("round  policy" + " " * 34 + "train" + " " * 10 + ("held-out" if heldout else ""))
    for result in results:
        model = result.policy.get("model") or result.policy["name"]
        held = f"{result.heldout['pass_rate']:6.1%}" if result.heldout else ""
        click.echo(f"{result.round:>5}  {str(model)[-38:]:<38}  {result.train['pass_rate']:6.1%}  {' ' * 7}{held}")
    click.echo(
        f"the curve: prover report {Path(out) / 'round-*'}"
        + (f" (held-out: {Path(out) / 'round-*' / 'heldout'})" if heldout else "")
    )
