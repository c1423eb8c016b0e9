"""The transformers policy on a tiny random Llama built on the spot (CPU, no download)."""

from __future__ import annotations

import json
import math
import os
import shutil
import types

import pytest
import torch

from search import SearchLimits, SearchStatus, Theorem, best_first_search, merge_proposals

from prover.config import BackendSpec
from prover.envs.replay import ReplayEnv
from prover.errors import MissingDependencyError, ProverError
from prover.policies import hf, make_policy
from prover.policies.hf import HFConfig, HFPolicy, load_model
from prover.policies.prompts import PROMPTS, cut_continuation
from prover.traces import TraceSet

from tests.tiny_llama import STATES, session_tiny_llama

# The Llemma formal2formal prompt (wellecks/llemma_formal2formal, proofsearch.py), written
# out independently of prover.policies.prompts so that any drift there fails this test.
LLEMMA_GOLDEN = (
    "Given the Lean 4 tactic state, suggest a next tactic.\n"
    "Here are some examples:\n"
    "\n"
    "Tactic state:\n---\n"
    "α : Type u_1\nr : α → α → Prop\ninst✝¹ : DecidableEq α\ninst✝ : IsIrrefl α r\n"
    "⊢ CutExpand r ≤ InvImage (Finsupp.Lex (rᶜ ⊓ fun x x_1 => x ≠ x_1) fun x x_1 => x < x_1) ↑toFinsupp\n"
    "---\nNext tactic:\n---\n"
    "rintro s t ⟨u, a, hr, he⟩\n"
    "---\n"
    "\n"
    "Tactic state:\n---\n"
    "ι : Type u_1\nI✝ J✝ : Box ι\nx y : ι → ℝ\nI J : WithBot (Box ι)\n⊢ ↑I = ↑J ↔ I = J\n"
    "---\nNext tactic:\n---\n"
    "simp only [Subset.antisymm_iff, ← le_antisymm_iff, withBotCoe_subset_iff]\n"
    "---\n"
    "\n"
    "Tactic state:\n---\n"
    "m n : ℕ\nh : Nat.coprime m n\n⊢ Nat.gcd m n = 1\n"
    "---\nNext tactic:\n---\n"
    "rw [← h.gcd_eq_one]\n"
    "---\n"
    "\n"
    "Tactic state:\n---\n"
    "{STATE}"
    "\n---\nNext tactic:\n---"
)


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    return session_tiny_llama(tmp_path_factory)


@pytest.fixture(scope="session")
def tiny(tiny_dir):
    """(model, tokenizer) loaded once through the user's path, shared by the tests."""
    return load_model(str(tiny_dir), "cpu")


def policy(tiny, **settings) -> HFPolicy:
    model, tokenizer = tiny
    settings.setdefault("max_new_tokens", 12)
    return HFPolicy(model, tokenizer, HFConfig(**settings))


def hf_spec(**settings) -> BackendSpec:
    """The hf policy as a run names it, with ``settings``."""
    return BackendSpec("policy", "hf", HFConfig(**settings))


def test_registry_builds_the_hf_policy_from_a_saved_directory(tiny_dir):
    built = make_policy(hf_spec(model=str(tiny_dir), device="cpu", max_new_tokens=8))
    assert isinstance(built, HFPolicy)
    assert built.model.dtype == torch.float32  # fp32 on the CPU
    assert built.tokenizer.padding_side == "left"
    assert built.tokenizer.pad_token == built.tokenizer.eos_token  # the tokenizer had none
    proposals = built.propose(list(STATES[:3]), k=4)
    assert [len(per_state) for per_state in proposals] == [4, 4, 4]  # k samples each, merged by the engine


def test_misspelt_policy_name_suggests_hf():
    with pytest.raises(ProverError, match="did you mean 'hf'"):
        make_policy(BackendSpec("policy", "hff", HFConfig()))
    with pytest.raises(ProverError, match="did you mean 'hf'"):
        BackendSpec.default("policy", "hff")


@pytest.mark.parametrize("prompt", ["llemma", "goal_proofstep"])
def test_batched_beam_search_equals_one_state_at_a_time(tiny, prompt):
    beam = policy(tiny, decoding="beam", prompt=prompt)
    batched = beam.propose(list(STATES), k=4)
    for state, together in zip(STATES, batched):
        (alone,) = beam.propose([state], k=4)
        assert [p.tactic for p in together] == [p.tactic for p in alone]
        assert [p.logprob for p in together] == pytest.approx([p.logprob for p in alone], abs=1e-3)


def test_batched_greedy_equals_one_state_at_a_time(tiny):
    greedy = policy(tiny, temperature=0.0, prompt="goal_proofstep")
    batched = greedy.propose(list(STATES), k=3)
    assert all(len(per_state) == 1 for per_state in batched)  # greedy has one candidate
    for state, together in zip(STATES, batched):
        (alone,) = greedy.propose([state], k=3)
        assert together[0].tactic == alone[0].tactic
        assert together[0].logprob == pytest.approx(alone[0].logprob, abs=1e-3)


@pytest.mark.parametrize("decoding", ["sampling", "beam"])
def test_every_candidate_is_proposed_best_first_with_a_finite_nonpositive_score(tiny, decoding):
    proposals = policy(tiny, decoding=decoding, temperature=1.0, top_p=0.95).propose(list(STATES), k=6)
    for per_state in proposals:
        assert len(per_state) == 6, "k candidates per state, none merged away: the engine merges"
        logprobs = [p.logprob for p in per_state]
        assert all(math.isfinite(lp) and lp <= 0 for lp in logprobs)
        assert logprobs == sorted(logprobs, reverse=True)
        assert all(p.tactic == p.tactic.strip() for p in per_state)
    if decoding == "beam":  # beams are distinct token sequences
        assert all(len({p.tactic for p in per_state}) > 1 for per_state in proposals)


def _model_logprob_of_greedy_continuation(tiny, prompt: str, num_tokens: int) -> tuple[list[int], float]:
    """The greedy continuation's ids and their summed log-prob, by a separate forward pass."""
    model, tokenizer = tiny
    ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        continuation = model.generate(
            ids, max_new_tokens=num_tokens, do_sample=False, pad_token_id=tokenizer.eos_token_id
        )[0, ids.shape[1] :]
        full = torch.cat([ids[0], continuation]).unsqueeze(0)
        logprobs = torch.log_softmax(model(full).logits[0, ids.shape[1] - 1 : -1].float(), dim=-1)
    return continuation.tolist(), logprobs.gather(1, continuation.unsqueeze(1)).sum().item()


def test_score_is_the_models_logprob_of_the_generated_tokens(tiny):
    greedy = policy(tiny, temperature=0.0, prompt="goal_proofstep", max_new_tokens=8)
    state = STATES[1]
    continuation, expected = _model_logprob_of_greedy_continuation(tiny, greedy.render(state), 8)
    assert tiny[1].eos_token_id not in continuation  # else the cut would shorten it
    (proposals,) = greedy.propose([state], k=1)
    assert proposals[0].tactic == tiny[1].decode(continuation, skip_special_tokens=True).strip()
    assert proposals[0].logprob == pytest.approx(expected, abs=1e-4)

    normalised = policy(tiny, temperature=0.0, prompt="goal_proofstep", max_new_tokens=8, length_normalise=True)
    (proposals,) = normalised.propose([state], k=1)
    assert proposals[0].logprob == pytest.approx(expected / 8, abs=1e-4)


def test_llemma_prompt_matches_the_documented_format_byte_for_byte(tiny):
    state = "x : ℕ\nh : {x} = %d\n⊢ x + 0 = x"  # braces and % must pass through untouched
    assert policy(tiny, prompt="llemma").render(state) == LLEMMA_GOLDEN.replace("{STATE}", state)
    assert policy(tiny, prompt="goal_proofstep").render(state) == f"[GOAL]{state}[PROOFSTEP]"


def test_long_state_is_cut_from_the_top_keeping_the_goal(tiny):
    _, tokenizer = tiny
    hypotheses = "\n".join(f"h{i} : x{i} + {i} = {2 * i}" for i in range(200))
    state = hypotheses + "\n⊢ x0 + x1 = 1"
    short = policy(tiny, prompt="goal_proofstep", max_prompt_tokens=64)
    prompt = short.render(state)
    assert len(tokenizer(prompt)["input_ids"]) <= 64
    kept = prompt.removeprefix("[GOAL]").removesuffix("[PROOFSTEP]")
    assert state.endswith(kept) and kept.endswith("⊢ x0 + x1 = 1")
    assert state[len(state) - len(kept) - 1] == "\n"  # cut at a line start, not mid-hypothesis
    assert len(short.propose([state, STATES[0]], k=2)) == 2


def test_prompt_limit_below_the_fixed_prompt_is_a_settings_error(tiny_dir):
    with pytest.raises(ProverError, match="bad settings for the hf policy: the 'llemma' prompt alone"):
        make_policy(hf_spec(model=str(tiny_dir), device="cpu", max_prompt_tokens=20))


def test_continuation_is_cut_at_the_delimiter_and_counted_through_it(tiny):
    _, tokenizer = tiny
    decode = lambda ids: tokenizer.decode(ids, skip_special_tokens=True)  # noqa: E731
    head = tokenizer("\nnlinarith [sq_nonneg (a - b)]\n---", add_special_tokens=False)["input_ids"]
    tail = tokenizer("\nsimp\n---", add_special_tokens=False)["input_ids"]
    cut = cut_continuation(PROMPTS["llemma"], head + tail, decode, tokenizer.eos_token_id)
    assert cut.tactic == "nlinarith [sq_nonneg (a - b)]"
    assert (cut.start, cut.end) == (0, len(head))

    multi_line = tokenizer("calc\n  b = 2 := h₀\n  _ = 4 := by norm_num", add_special_tokens=False)["input_ids"]
    eos = tokenizer.eos_token_id
    cut = cut_continuation(PROMPTS["goal_proofstep"], multi_line + [eos, eos, 17], decode, eos)
    assert cut.tactic == "calc\n  b = 2 := h₀\n  _ = 4 := by norm_num"  # a newline does not end it
    assert cut.num_tokens == len(multi_line) + 1  # the EOS token's log-prob counts


def test_each_generated_row_is_scored_through_its_eos_and_duplicates_are_left_to_the_engine(tiny):
    _, tokenizer = tiny
    goal = policy(tiny, prompt="goal_proofstep")
    eos = tokenizer.eos_token_id
    simp = tokenizer("simp", add_special_tokens=False)["input_ids"]
    ring = tokenizer(" ring ", add_special_tokens=False)["input_ids"]
    rows = [simp + [eos], ring + [eos], simp + [eos], [eos]]
    width = max(map(len, rows))
    rows = [row + [eos] * (width - len(row)) for row in rows]
    scores = [[-1.0] * width, [-0.5] * width, [-0.1] * width, [-0.01] * width]
    (proposals,) = goal._proposals(rows, scores, num_states=1, num_return=4, k=4)
    # One proposal per row, best first; each row's score sums its tokens through the first EOS.
    rows_scored = [
        ("simp", -1.0 * (len(simp) + 1)),
        ("ring", -0.5 * (len(ring) + 1)),
        ("simp", -0.1 * (len(simp) + 1)),
        ("", -0.01),
    ]
    expected = sorted(rows_scored, key=lambda row: -row[1])
    assert [p.tactic for p in proposals] == [t for t, _ in expected]
    assert [p.logprob for p in proposals] == pytest.approx([lp for _, lp in expected])
    # The engine keeps simp's best copy (row 2, not row 0) and drops the empty tactic.
    merged = {p.tactic: p.logprob for p in merge_proposals(proposals, k=4)}
    assert merged == pytest.approx({"simp": rows_scored[2][1], "ring": rows_scored[1][1]})


def test_search_driven_by_the_tiny_llama_proves_a_two_step_replay_theorem(tiny_dir):
    """The model loaded through ``from_pretrained`` drives best-first search on a replay
    environment whose recorded steps are its own second and fourth beams: the search has to
    try the proposals it is given, best first, past the unrecorded ones."""
    policy = make_policy(hf_spec(model=str(tiny_dir), device="cpu", decoding="beam", max_new_tokens=8))
    first, second = (list(dict.fromkeys(p.tactic for p in beams)) for beams in policy.propose(list(STATES[:2]), k=4))
    assert len(first) >= 2 and len(second) >= 4 and all(first + second)
    records = [
        {"theorem": "t", "state_before": STATES[0], "tactic": first[1], "state_after": STATES[1], "step": 0},
        {
            "theorem": "t",
            "state_before": STATES[1],
            "tactic": second[3],
            "state_after": "no goals",
            "proof_finished": True,
            "step": 1,
        },
    ]
    result = best_first_search(
        Theorem("t"),
        policy,
        ReplayEnv(TraceSet.from_records(records)),
        SearchLimits(max_expansions=4, tactics_per_node=4),
    )
    assert result.status is SearchStatus.PROVED
    assert result.proof == [first[1], second[3]]
    assert result.num_expansions == 2 and result.num_tactics >= 2 + 4


@pytest.mark.slow
def test_a_tiny_policy_trained_on_recorded_proofs_proves_their_theorems_end_to_end(traces_path, tmp_path, capsys):
    """Train on three theorems' recorded proofs, then ``prover prove-split`` with ``--policy hf``
    on the replay environment of the same records: the model directory loads through
    ``from_pretrained`` with the prompt it was trained on, and every theorem is proved and
    re-checked. It memorises, and that is all this shows: the pipeline works end to end."""
    from prover.cli import main
    from prover.learn.training import TinyLlamaShape

    from tests.tiny_llama import train_tiny_policy

    chosen = {"mathd_algebra_478", "mathd_numbertheory_185", "amc12a_2002_p6"}
    lines = [
        line
        for line in traces_path.read_text(encoding="utf-8").splitlines()
        if line.strip() and json.loads(line)["theorem"] in chosen
    ]
    traces = tmp_path / "traces.jsonl"
    traces.write_text("\n".join(lines) + "\n", encoding="utf-8")
    shape = TinyLlamaShape(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2)
    model = train_tiny_policy(
        traces, tmp_path / "model", steps=200, seed=0, batch_size=8, max_prompt_tokens=256, shape=shape, progress=None
    )
    run = tmp_path / "run"
    main(
        [
            "prove-split",
            "--env",
            "replay",
            "--traces",
            str(traces),
            "--policy",
            "hf",
            "--model",
            str(model),
            "--device",
            "cpu",
            "--decoding",
            "beam",
            "--tactics-per-node",
            "4",
            "--max-expansions",
            "8",
            "--num-workers",
            "0",
            "--no-progress",
            "--out",
            str(run),
        ]
    )
    capsys.readouterr()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["num_theorems"] == 4  # amc12a_2002_p6 has two initial goals
    assert summary["num_proved"] == 4, (run / "results.jsonl").read_text()
    records = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
    assert all(r["status"] == "proved" and r["proof"] for r in records)


def test_model_directory_records_its_prompt_format(tiny_dir, tmp_path):
    trained = tmp_path / "trained"
    shutil.copytree(tiny_dir, trained)
    (trained / hf.POLICY_METADATA).write_text(json.dumps({"prompt": "goal_proofstep", "max_prompt_tokens": 256}))
    built = hf.build(HFConfig(model=str(trained), device="cpu"))
    assert built.format.name == "goal_proofstep"
    assert built.config.max_prompt_tokens == 256


def test_missing_local_model_is_one_clear_sentence(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(ProverError) as caught:
        make_policy(hf_spec(model=str(missing), device="cpu"))
    message = str(caught.value)
    assert message == f"cannot load model '{missing}': no such directory; pass --model PATH to a model directory"
    assert "\n" not in message


def test_model_path_that_is_a_file_is_one_clear_sentence(tmp_path):
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"")
    with pytest.raises(ProverError, match="it is a file, not a model directory"):
        hf.build(HFConfig(model=str(weights), device="cpu"))


def test_hub_id_without_network_is_one_clear_sentence(monkeypatch):
    monkeypatch.setattr(hf, "_hub_reachable", lambda timeout_s=3.0: False)
    with pytest.raises(MissingDependencyError) as caught:
        make_policy(hf_spec(model="prover-tests/no-such-model", device="cpu"))
    assert str(caught.value) == (
        "cannot load model 'prover-tests/no-such-model': it is not a local directory and could not be "
        "downloaded (no network?); pass --model PATH to a local copy"
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible, so asking for one succeeds")
def test_asking_for_cuda_without_a_gpu_is_one_clear_sentence(tiny_dir):
    with pytest.raises(MissingDependencyError, match="no CUDA GPU here; use --device cpu or auto"):
        make_policy(hf_spec(model=str(tiny_dir), device="cuda"))


def test_pyproject_requires_the_transformers_and_vllm_this_code_was_checked_against():
    """``transformers>=4.56`` is the floor: with torch 2.13 (CPU) in a throwaway venv, this
    module's quick tests pass on transformers 4.56.0 and fail on 4.55.4, whose
    ``from_pretrained`` does not know ``dtype=`` ("LlamaForCausalLM.__init__() got an
    unexpected keyword argument 'dtype'"). 4.56.0's tokenizers also return
    ``token_type_ids``, which ``generate`` refuses, so the policy passes on only
    ``input_ids`` and ``attention_mask``. The cap is the newest release the registry served
    when this module, tests/test_decoding.py and tests/test_proof_context.py passed on it
    (5.25.0, with its ``cache=`` keyword; they passed on 4.56.0 too, with
    ``past_key_values=``: ``prover.policies.hf.cache_arguments``). The vLLM range tops out at
    the version whose classes tests/test_policy_vllm.py was run against (0.32.0)."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'^\s*"transformers>=4\.56,<5\.26",', text, re.M)
    assert re.search(r'^vllm = \["vllm>=0\.11,<0\.33"\]', text, re.M)


# ---- memory: batches split into generate calls that fit, halved on out-of-memory ----------------


def recording_calls(policy: HFPolicy, fail_first_with: BaseException | None = None) -> list[int]:
    """Make ``policy._generate`` record how many states each call got (and raise
    ``fail_first_with`` on the first call, as a GPU out of memory would)."""
    sizes: list[int] = []
    generate = policy._generate

    def recorded(prompts, k):
        sizes.append(len(prompts))
        if fail_first_with is not None and len(sizes) == 1:
            raise fail_first_with
        return generate(prompts, k)

    policy._generate = recorded
    return sizes


def same_candidates(left, right) -> None:
    for a, b in zip(left, right, strict=True):
        assert [p.tactic for p in a] == [p.tactic for p in b]
        assert [p.logprob for p in a] == pytest.approx([p.logprob for p in b], abs=1e-3)


def test_memory_estimate_counts_each_sequences_kv_cache_and_logits():
    from transformers import LlamaConfig

    # Llemma-7B's shape in bf16: 32 layers x 2 (K, V) x 32 KV heads x 128 x 2 bytes = 0.5 MiB a token.
    llemma = types.SimpleNamespace(
        config=LlamaConfig(
            num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32, hidden_size=4096, vocab_size=32016
        ),
        dtype=torch.bfloat16,
    )
    per_state = hf.generation_bytes_per_state(llemma, sequences=8, prompt_tokens=444, new_tokens=256)
    assert per_state == 8 * ((444 + 256) * 2**19 + 256 * 32016 * 4)
    # The Ray default (32 states x 8 samples) would want ~ 3.2 GB a state, 100 GB in one call.
    assert 30 * hf.GB < 32 * per_state < 110 * hf.GB


def test_a_batch_split_to_fit_the_memory_budget_gives_the_same_beams(tiny):
    states = list(STATES[:5])
    whole = policy(tiny, decoding="beam", prompt="goal_proofstep")
    expected = whole.propose(states, k=4)
    model, tokenizer = tiny
    prompt_tokens = max(whole.count_tokens(whole.render(state)) for state in states)
    two_states = 2 * hf.generation_bytes_per_state(model, sequences=4, prompt_tokens=prompt_tokens, new_tokens=12)
    split = policy(tiny, decoding="beam", prompt="goal_proofstep", gpu_memory_gb=two_states * 1.01 / hf.GB)
    sizes = recording_calls(split)
    same_candidates(split.propose(states, k=4), expected)
    assert sizes == [2, 2, 1]
    assert whole.states_per_call(states, k=4) == 5  # on the CPU nothing is split unless --gpu-memory-gb says so


def test_out_of_memory_halves_the_generate_call_and_retries_with_the_same_candidates(tiny):
    states = list(STATES[:4])
    expected = policy(tiny, decoding="beam", prompt="goal_proofstep").propose(states, k=4)
    retrying = policy(tiny, decoding="beam", prompt="goal_proofstep")
    error = torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    sizes = recording_calls(retrying, fail_first_with=error)
    same_candidates(retrying.propose(states, k=4), expected)
    assert sizes == [4, 2, 2]  # the failed call of 4, then halves
    assert retrying.states_per_call_limit == 2  # and later batches start there
    assert retrying.states_per_call(states * 3, k=4) == 2


def test_out_of_memory_on_one_state_and_other_errors_are_raised(tiny):
    assert hf.is_out_of_memory(RuntimeError("CUDA error: out of memory"))  # some kernels raise it so
    assert not hf.is_out_of_memory(ValueError("out of memory"))
    alone = policy(tiny, decoding="beam", prompt="goal_proofstep")
    recording_calls(alone, fail_first_with=torch.cuda.OutOfMemoryError("CUDA out of memory"))
    with pytest.raises(hf.GenerationOutOfMemory, match="lower --tactics-per-node, --max-new-tokens"):
        alone.propose([STATES[0]], k=4)
    broken = policy(tiny, decoding="beam", prompt="goal_proofstep")
    sizes = recording_calls(broken, fail_first_with=RuntimeError("shape mismatch"))
    with pytest.raises(RuntimeError, match="shape mismatch"):
        broken.propose(list(STATES[:4]), k=4)
    assert sizes == [4]


MINIF2F_STATE = (
    "b h v : ℝ\nh₀ : 0 < b ∧ 0 < h ∧ 0 < v\nh₁ : v = 1 / 3 * (b * h)\nh₂ : b = 30\nh₃ : h = 13 / 2\n⊢ v = 65"
)


@pytest.mark.gpu
def test_real_model_proposes_for_a_minif2f_state_on_the_gpu():
    model = os.environ.get("PROVER_GPU_MODEL", "EleutherAI/llemma_7b")
    real = make_policy(hf_spec(model=model, device="cuda", decoding="beam", max_new_tokens=64))
    assert real.model.dtype == torch.bfloat16
    (proposals,) = real.propose([MINIF2F_STATE], k=8)
    assert proposals and all(math.isfinite(p.logprob) and p.logprob <= 0 for p in proposals)
    batched = real.propose([MINIF2F_STATE, "x : ℕ\n⊢ x + 0 = x"], k=8)
    assert [p.tactic for p in batched[0]][:3] == [p.tactic for p in proposals][:3]


@pytest.mark.slow
def test_tiny_policy_trains_on_the_traces_and_loads_as_an_hf_model(traces_path, tmp_path):
    from prover.learn.training import TinyLlamaShape, training_pairs

    from tests.tiny_llama import train_tiny_policy

    shape = TinyLlamaShape(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2)
    out = train_tiny_policy(
        traces_path,
        tmp_path / "tiny-policy",
        steps=40,
        seed=0,
        batch_size=8,
        max_prompt_tokens=256,
        shape=shape,
        progress=None,
    )
    metadata = json.loads((out / hf.POLICY_METADATA).read_text())
    assert metadata["prompt"] == "goal_proofstep" and metadata["num_pairs"] == len(training_pairs(traces_path)) > 400
    assert metadata["final_loss"] < metadata["first_loss"] - 1.0
    trained = make_policy(hf_spec(model=str(out), device="cpu", max_new_tokens=16))
    assert trained.format.name == "goal_proofstep" and trained.config.max_prompt_tokens == 256
    (proposals,) = trained.propose(["x : ℕ\n⊢ x + 0 = x"], k=4)
    assert proposals and all(math.isfinite(p.logprob) and p.logprob <= 0 for p in proposals)
