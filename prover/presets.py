"""Presets: the policy, prompt, decoding and search budget of a published system, in one switch.

    prover attack mathd_algebra_478 --env dojo --preset llemma-f2f
    prover prove-split --env dojo --theorem-set minif2f --split test --preset llemma-f2f --policy vllm
    prover presets                  # the list
    prover presets llemma-f2f       # its resolved settings, as JSON

A preset is applied on top of the defaults and any ``--config`` file, and flags given on
the command line override it (``--preset llemma-f2f --max-expansions 10``). It sets a model
policy (``hf`` unless ``--policy vllm`` is given) and ``limits`` and ``search.scorer``; the
run's ``config.json`` records the resolved settings, not the preset's name, so a run is
reproduced from its config whatever later becomes of the preset.

Each value comes from the system's own evaluation code or model card, named in
``source``; what the source does not say is said in ``description``, with the value used
in its place. ``reported_minif2f_test`` is the figure the source reports for miniF2F-test,
with its budget. A preset also sets ``--attempts``, the number of independent searches
per theorem behind that figure (pass@N: 1 for Llemma's and llmstep's scripts, 256 for
InternLM2.5-StepProver's paper, 2048 for BFS-Prover's card); ``prover presets NAME``
says what a full reproduction on miniF2F-test costs (``reproduction_cost``). Give
``--attempts 1`` for one search per theorem.

The tactic score and the priority of states follow Llemma's ``proofsearch.py``: a tactic
scores its cumulative log-prob divided by its generated tokens (``length_normalise``,
"mean per token"), and a state's priority is the sum of the scores of the tactics on its
path (``--scorer cumulative``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from search import Registry

from prover.config import BackendSpec, RunConfig
from prover.policies.prompts import get_prompt
from prover.registry import POLICIES
from prover.settings import ConfigError, from_dict, to_dict

# The policies that run a model, with a prompt and decoding (the registry says which); hf first.
MODEL_POLICIES = tuple(name for name in POLICIES.shown() if POLICIES[name].loads_model)


@dataclass(frozen=True)
class Preset:
    """One published system's settings (see the module docstring)."""

    name: str
    summary: str  # one line for `prover presets`
    model: str
    prompt: str
    decoding: str  # "beam" or "sampling"
    tactics_per_node: int
    max_new_tokens: int
    length_normalise: bool  # tactic score: mean log-prob per generated token (else the sum)
    scorer: str  # priority of states: "cumulative" (sum of tactic scores) or "length_normalised"
    max_expansions: int
    time_limit_s: float
    reported_minif2f_test: str
    source: str
    description: str
    attempts: int = 1  # independent searches per theorem behind the reported figure (pass@N)
    reported_gpu_hours: str = "not stated in the sources checked"  # compute of the figure, as the source gives it
    dtype: str = "bfloat16"  # the weights' type, as the source loaded them
    beam_ranking: str = "sum"  # beam search only: how finished beams are ranked (prover.policies.beams)
    beam_finish: str = "top_k"  # beam search only: which of a step's 2k candidates may finish
    temperature: float = 1.0  # sampling only
    top_p: float = 1.0  # sampling only
    trust_remote_code: bool = False
    vllm: dict[str, Any] = field(default_factory=dict)  # settings of the vllm policy only

    policies = MODEL_POLICIES  # the policies a preset can set up

    def apply(self, config: RunConfig) -> RunConfig:
        """``config`` with this preset's settings (``RunConfig.assemble`` calls it)."""
        return apply_preset(config, self.name)

    def policy_settings(self, policy: str) -> dict[str, Any]:
        """The settings this preset gives the ``policy`` backend (``hf`` or ``vllm``)."""
        settings = dict(
            model=self.model,
            prompt=self.prompt,
            decoding=self.decoding,
            max_new_tokens=self.max_new_tokens,
            length_normalise=self.length_normalise,
            trust_remote_code=self.trust_remote_code,
            dtype=self.dtype,
        )
        if self.decoding == "beam":
            settings.update(beam_ranking=self.beam_ranking, beam_finish=self.beam_finish)
        if self.decoding == "sampling":
            settings.update(temperature=self.temperature, top_p=self.top_p)
        if policy == "vllm":
            settings.update(self.vllm)
        return settings


_LLEMMA_SOURCE = (
    "wellecks/llemma_formal2formal at adf9240 (proofsearch.py, scripts/eval_llemma{7b,34b}.sh, README, "
    "requirements.txt: vllm==0.1.7): vLLM LLM(dtype='bfloat16'), SamplingParams(n=32, temperature=0, "
    "use_beam_search=True, max_tokens=256, stop='---') with vLLM's default length_penalty=1 (Sequence."
    "get_beam_search_score: cumulative log-prob / (prompt + generated tokens, less a final EOS); "
    "LLMEngine._process_sequence_group_outputs: any of the 2k candidates may finish), tactic score "
    "cumulative_logprob / len(token_ids), priority the sum of those, --max-iters 100, Dojo(hard_timeout=600), "
    "whose alarm LeanDojo 1.1.2 sets once the initial state is read; one search per theorem (--temperatures 0.0)"
)
_LLEMMA_NOTE = (
    "Llemma's few-shot formal2formal prompt, beam search of 32 beams ended at '---', 256 new tokens, finished "
    "beams ranked and admitted as vLLM 0.1.7 did (--beam-ranking vllm_0_1_7 --beam-finish any), tactic score "
    "the mean log-prob per generated token, state priority the sum of those along the path, 100 expansions, "
    "600 s counted once Lean has started. Not reproduced: LeanDojo 1.1.2 and the Lean 4 / Mathlib commit of "
    "the paper's miniF2F (this tool pins lean-dojo 4.20.0)."
)
_BFS_NOTE = (
    "The card gives the prompt '{state}:::' (the model echoes the state, which is dropped) and the budget "
    "2048x2x600: 2048 searches of 2 tactics per expansion and 600 expansions, which the preset sets "
    "(--attempts 2048). Not on the card, with the value used: sampling temperature "
    "(1.0), new-token limit (256), time limit (600 s, this tool's default), stop string (none: the end-of-"
    "sequence token), and the exponent of the paper's length normalisation (the priority here is the summed "
    "log-prob of the path divided by its depth, --scorer length_normalised; a tactic scores its summed log-prob)."
)

PRESETS: Registry[Preset] = Registry(
    "preset",
    {
        p.name: p
        for p in (
            Preset(
                name="llemma-f2f",
                summary="Llemma-7B as in its formal2formal miniF2F experiments (beam 32, 100 expansions, 600 s)",
                model="EleutherAI/llemma_7b",
                prompt="llemma",
                decoding="beam",
                tactics_per_node=32,
                max_new_tokens=256,
                length_normalise=True,
                scorer="cumulative",
                max_expansions=100,
                time_limit_s=600.0,
                reported_minif2f_test="26.23% (64/244), one search per theorem",
                source=_LLEMMA_SOURCE,
                description=_LLEMMA_NOTE
                + " The model, open-web-math/llemma_7b in the script, is now EleutherAI/llemma_7b.",
                dtype="bfloat16",
                beam_ranking="vllm_0_1_7",
                beam_finish="any",
                vllm=dict(tensor_parallel_size=1),
            ),
            Preset(
                name="llemma-34b-f2f",
                summary="Llemma-34B as in its formal2formal miniF2F experiments (beam 32, 100 expansions, 600 s)",
                model="EleutherAI/llemma_34b",
                prompt="llemma",
                decoding="beam",
                tactics_per_node=32,
                max_new_tokens=256,
                length_normalise=True,
                scorer="cumulative",
                max_expansions=100,
                time_limit_s=600.0,
                reported_minif2f_test="25.82% (63/244), one search per theorem",
                source=_LLEMMA_SOURCE,
                description=_LLEMMA_NOTE + " The script split the model over 2 GPUs (--tp-degree 2), as the vllm "
                "policy does here (--tensor-parallel-size 2).",
                dtype="bfloat16",
                beam_ranking="vllm_0_1_7",
                beam_finish="any",
                vllm=dict(tensor_parallel_size=2),
            ),
            Preset(
                name="llmstep-pythia-f2f",
                summary="a ReProver-style [GOAL]...[PROOFSTEP] causal model: llmstep's Pythia-2.8B (beam 32, 100 expansions)",
                model="wellecks/llmstep-mathlib4-pythia2.8b",
                prompt="goal_proofstep",
                decoding="beam",
                tactics_per_node=32,
                max_new_tokens=256,
                length_normalise=True,
                scorer="cumulative",
                max_expansions=100,
                time_limit_s=600.0,
                reported_minif2f_test="27.87% (68/244), one search per theorem",
                source="the model card ('[GOAL]tactic-state[PROOFSTEP]next-tactic<|endoftext|>'); wellecks/llmstep at "
                "03e3171 python/benchmarking/proofsearch (proofsearch.py, proofsearch.sh, README): the Llemma search with "
                "prompt f'[GOAL]{ts}[PROOFSTEP]', vLLM LLM(dtype='float16'), stop at the end-of-sequence token, 32 beams "
                "with vLLM's default length_penalty=1, 256 tokens, 100 iterations, 600 s, one search per theorem "
                '(TEMPERATURES="0.0")',
                description="ReProver's proofstep format on a causal LM (ReProver itself is a ByT5 encoder-decoder, "
                "which this tool does not run): Pythia-2.8B fine-tuned on LeanDojo Benchmark 4, searched as llmstep's "
                "benchmark does, which is Llemma's search with this prompt, float16 weights, and vLLM 0.1.7's beam "
                "rules; the tactic ends at the end-of-sequence token.",
                dtype="float16",
                beam_ranking="vllm_0_1_7",
                beam_finish="any",
                vllm=dict(tensor_parallel_size=1),
            ),
            Preset(
                name="internlm2.5-stepprover",
                summary="InternLM2.5-StepProver-7B with InternLM-Math's public search script (beam 32, 100 expansions, 1200 s)",
                model="internlm/internlm2_5-step-prover",
                prompt="internlm_stepprover",
                decoding="beam",
                tactics_per_node=32,
                max_new_tokens=256,
                length_normalise=True,
                scorer="cumulative",
                max_expansions=100,
                time_limit_s=1200.0,
                trust_remote_code=True,
                attempts=256,
                reported_minif2f_test="65.9% with a critic model and 256x32x600 (256 searches, 32 tactics, 600 "
                "expansions); not what one search of this preset measures",
                source="the model card (input template); InternLM/InternLM-Math at a4196fa minif2f/"
                "proofsearch_internLM2.5-StepProver.py (chat turn; NAME theorem.full_name, PROOF_BEFORE '\\n'.join(steps); "
                "stop '<|im_end|>'; beam search of --num-samples 32 with length_penalty=0.0, so finished beams ranked by "
                "summed log-prob, any of the 2k candidates finishing, as vLLM 0.2.x (requirements.txt: vllm==0.2.7) did; "
                "max_tokens 256, mean log-prob per token, --max-iters 100, --timeout 1200, vLLM dtype float16, "
                "trust_remote_code); the 65.9% is the InternLM2.5-StepProver paper's (arXiv 2410.15700), as BFS-Prover's "
                "card tabulates it",
                description="The card's template asks for the theorem's name (NAME) and the tactics so far "
                "(PROOF_BEFORE); both are filled as the script fills them (the full name; the tactics of the path, one "
                "per line). The paper's figure used a "
                "critic (value model) to order states and 256 searches of 600 expansions; this preset runs the public "
                "script's defaults without a critic. The model's code is custom (InternLM2), so trust_remote_code is on. "
                "The script's visited-twice rule (a state may be queued twice) is not reproduced: a state is one node here.",
                dtype="float16",
                beam_ranking="sum",
                beam_finish="any",
                vllm=dict(tensor_parallel_size=1),
            ),
            Preset(
                name="bfs-prover-v1",
                summary="BFS-Prover-V1-7B: sampling 2 tactics per node, 600 expansions, length-normalised priority",
                model="ByteDance-Seed/BFS-Prover-V1-7B",
                prompt="bfs_prover",
                decoding="sampling",
                tactics_per_node=2,
                max_new_tokens=256,
                length_normalise=False,
                scorer="length_normalised",
                max_expansions=600,
                time_limit_s=600.0,
                attempts=2048,
                reported_minif2f_test="70.83% +- 0.89% with 2048x2x600 (72.95% accumulated over runs)",
                source="the model card ByteDance-Seed/BFS-Prover-V1-7B (usage: '{state}:::', echo of the state; results "
                "table: BFS, no critic, tactic budget 2048x2x600)",
                description=_BFS_NOTE,
                dtype="bfloat16",
                vllm=dict(tensor_parallel_size=1),
            ),
            Preset(
                name="bfs-prover-v2-7b",
                summary="BFS-Prover-V2-7B, searched as BFS-Prover-V1 (its card gives no search settings)",
                model="ByteDance-Seed/BFS-Prover-V2-7B",
                prompt="bfs_prover",
                decoding="sampling",
                tactics_per_node=2,
                max_new_tokens=256,
                length_normalise=False,
                scorer="length_normalised",
                max_expansions=600,
                time_limit_s=600.0,
                attempts=2048,
                reported_minif2f_test="82.4% (the card; budget not stated)",
                source="the model card ByteDance-Seed/BFS-Prover-V2-7B (usage: '{state}:::', echo of the state; "
                "miniF2F-test 82.4%)",
                description="The V2 card gives the prompt and the figure but no search settings: those of BFS-Prover-V1's "
                "card are used. " + _BFS_NOTE,
                dtype="bfloat16",
                vllm=dict(tensor_parallel_size=1),
            ),
            Preset(
                name="bfs-prover-v2-32b",
                summary="BFS-Prover-V2-32B without its planner, searched as BFS-Prover-V1 (its card gives no search settings)",
                model="ByteDance-Seed/BFS-Prover-V2-32B",
                prompt="bfs_prover",
                decoding="sampling",
                tactics_per_node=2,
                max_new_tokens=256,
                length_normalise=False,
                scorer="length_normalised",
                max_expansions=600,
                time_limit_s=600.0,
                attempts=2048,
                reported_minif2f_test="86.1% without the planner, 95.08% with it (the card; budget not stated)",
                source="the model card ByteDance-Seed/BFS-Prover-V2-32B (usage: '{state}:::', echo of the state; "
                "miniF2F-test 86.1%, 95.08% with the planner)",
                description="The V2 card gives the prompt and the figures but no search settings: those of BFS-Prover-V1's "
                "card are used; the planner (a second model splitting theorems into subgoals) is not part of this tool. "
                "65 GB of bf16 weights: the vllm policy splits them over 2 GPUs. " + _BFS_NOTE,
                dtype="bfloat16",
                vllm=dict(tensor_parallel_size=2),
            ),
        )
    },
    error=ConfigError,
)


def get_preset(name: str) -> Preset:
    """The preset called ``name``; a ConfigError with "did you mean" otherwise."""
    return PRESETS.lookup(name)


def apply_preset(config: RunConfig, name: str) -> RunConfig:
    """``config`` with preset ``name``'s policy, prompt, decoding and search settings.

    The policy stays ``vllm`` where ``config`` has it, and is ``hf`` otherwise; every
    other setting of ``config`` is kept. Apply flags afterwards to override the preset.
    """
    preset = get_preset(name)
    policy = config.policy if config.policy.name in MODEL_POLICIES else BackendSpec.default("policy", MODEL_POLICIES[0])
    options = from_dict(
        type(policy.options), {**to_dict(policy.options), **preset.policy_settings(policy.name)}, f"preset {name}"
    )
    limits = dataclasses.replace(
        config.limits,
        max_expansions=preset.max_expansions,
        time_limit_s=preset.time_limit_s,
        tactics_per_node=preset.tactics_per_node,
    )
    search = dataclasses.replace(config.search, scorer=preset.scorer, attempts=preset.attempts)
    return dataclasses.replace(
        config, policy=BackendSpec(policy.kind, policy.name, options), limits=limits, search=search
    )


def resolved_settings(name: str, policy: str = "hf") -> dict[str, Any]:
    """What preset ``name`` sets, as ``prover presets NAME`` prints it: the settings a run
    gets (``stop`` lists the prompt format's stop strings; empty: the end-of-sequence token
    ends a tactic), the reported figure, the source and the notes."""
    preset = get_preset(name)
    config = apply_preset(RunConfig(policy=BackendSpec.default("policy", policy)), name)
    options = config.policy.options
    settings: dict[str, Any] = {
        "name": preset.name,
        "summary": preset.summary,
        "policy": config.policy.name,
        "model": options.model,
        "prompt": options.prompt,
        "decoding": options.decoding,
        "tactics_per_node": config.limits.tactics_per_node,
        "max_new_tokens": options.max_new_tokens,
        "stop": list(get_prompt(options.prompt).stop),
        "tactic_score": "mean_logprob_per_token" if options.length_normalise else "sum_logprob",
        "scorer": config.search.scorer,
        "max_expansions": config.limits.max_expansions,
        "time_limit_s": config.limits.time_limit_s,
    }
    if options.decoding == "beam":
        settings.update(beam_ranking=options.beam_ranking, beam_finish=options.beam_finish)
    if options.decoding == "sampling":
        settings.update(temperature=options.temperature, top_p=options.top_p)
    settings.update(attempts=config.search.attempts, full_reproduction=reproduction_cost(preset))
    settings.update(
        dtype=options.dtype,
        trust_remote_code=options.trust_remote_code,
        vllm=dict(preset.vllm),
        reported_minif2f_test=preset.reported_minif2f_test,
        source=preset.source,
        description=preset.description,
    )
    return settings


MINIF2F_TEST_THEOREMS = 244


def reproduction_cost(preset: Preset, theorems: int = MINIF2F_TEST_THEOREMS) -> dict[str, Any]:
    """What reproducing ``preset``'s figure on miniF2F-test takes at most: searches,
    expansions and tactic candidates (every search run to its budget; a proof cancels the
    theorem's other searches, so a real run does less), and the compute the source reports."""
    searches = theorems * preset.attempts
    return {
        "theorems": theorems,
        "searches": searches,
        "max_expansions": searches * preset.max_expansions,
        "max_tactic_candidates": searches * preset.max_expansions * preset.tactics_per_node,
        "max_search_hours": searches * preset.time_limit_s / 3600,
        "reported_gpu_hours": preset.reported_gpu_hours,
        "command": f"prover prove-split --env dojo --theorem-set minif2f --split test --preset {preset.name} "
        "--policy vllm",
    }
