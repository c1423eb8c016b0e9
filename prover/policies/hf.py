"""A tactic policy on Hugging Face ``transformers``: any causal LM, Llemma by default.

Many states go through one batched ``generate`` call; each gets ``k`` candidates, sampled
(``temperature``, ``top_p``; temperature 0 is greedy) or from beam search (``num_beams=k``;
``--beam-ranking``/``--beam-finish`` rules that ``generate`` lacks, such as vLLM 0.1.7's,
run as a step-wise beam search on the model's KV cache: ``prover.policies.beams``).
With a ``ContextualPolicy`` caller the prompt may hold the theorem and the proof so far
(``prompts.InternLMStepProverFormat``). A candidate's score is the sum of the model's log-probs of its generated tokens, up to and
including the token that ends the tactic (see ``prompts.cut_continuation``), or that sum
divided by the token count with ``length_normalise``. The log-probs come from the raw
logits, not the temperature/top-p-warped ones, so they mean the same under every decoding.

    policy = HFPolicy.from_config(HFConfig(model="EleutherAI/llemma_7b"))
    policy.propose(["x : ℕ\\n⊢ x + 0 = x"], k=8)   # [[Proposal("simp", -0.9), ...]]

or from the command line: ``prover attack ... --policy hf --model PATH_OR_HUB_ID``.

Loading: ``--dtype`` (bf16 by default) on a GPU, fp32 on the CPU, ``device_map="auto"`` over several GPUs (when
``accelerate`` is installed), left padding, pad = eos where the tokenizer has no pad token.
A model directory written by ``prover.learn.training`` holds ``prover_policy.json`` naming
the prompt format it was trained on; that format is then used whatever ``--prompt`` says,
since the model knows no other.

Memory: one ``generate`` call holds, for every sequence it grows (k per state), a KV cache
of (prompt + new tokens) x layers x 2 x KV heads x head dim, and the logits of every step.
A batch of states is split into calls whose estimate (``generation_bytes_per_state``) fits
``--gpu-memory-gb``, by default what the GPU reports free (on the CPU: no split unless
set). Should a call still run out of GPU memory, it is halved and retried, and later
batches keep the smaller size, instead of the searches failing.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence
from urllib.parse import urlparse

from search import Proposal

from prover.errors import MissingDependencyError, ProverError
from prover.policies.beams import BeamState, advance, final_beams
from prover.policies.prompts import (
    ModelPolicyConfig,
    PromptedPolicy,
    PromptFormat,
    cut_continuation,
    end_token_ids,
    fit_prompt,
    get_prompt,
    special_stop_ids,
    to_proposals,
)
from prover.settings import setting

log = logging.getLogger(__name__)
_logged_warnings: set[str] = set()


@contextmanager
def library_output_to_log():
    """Keep transformers' own output off the prover's terminal: its progress bars ("Loading
    weights") are off, and the warnings raised inside (FutureWarnings about arguments the
    library will rename) go to this module's logger, once per message, at INFO: a run's
    log, where one is set up, never the terminal's stderr."""
    import warnings

    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        try:
            yield
        finally:
            if bars:
                hf_logging.enable_progress_bar()
    for warning in caught:
        text = f"{warning.category.__name__}: {warning.message} ({warning.filename}:{warning.lineno})"
        if text not in _logged_warnings:
            _logged_warnings.add(text)
            log.info("%s", text)


POLICY_METADATA = "prover_policy.json"  # written beside the weights by prover.learn.training


GB = 10**9
FREE_MEMORY_SHARE = 0.85  # of what the GPU reports free: the rest is for activations and fragmentation


@dataclass(frozen=True)
class HFConfig(ModelPolicyConfig):
    device: str = setting("auto", "Where the model runs: auto, cpu, cuda or cuda:N.")
    gpu_memory_gb: float | None = setting(
        None,
        "Memory (GB) that the KV cache and logits of one generate call may take; larger batches of "
        "states are split into calls that fit [default: 85% of what the GPU reports free; on the CPU, no "
        "split].",
        min=0,
        min_open=True,
        metavar="GB",
    )


class GenerationOutOfMemory(RuntimeError):
    """Even one state's candidates did not fit in GPU memory (the theorem becomes an error result)."""


class HFPolicy(PromptedPolicy):
    """Proposes tactics with a ``transformers`` causal LM; see the module docstring.

    Give it a loaded ``model`` and ``tokenizer`` (tests, reuse), or build it with
    ``HFPolicy.from_config(config)`` which loads ``config.model``.
    """

    def __init__(self, model, tokenizer, config: HFConfig = HFConfig()):
        import torch

        self.model = model.eval()
        self.tokenizer = tokenizer
        self.config = config
        self.format: PromptFormat = get_prompt(config.prompt)
        tokenizer.padding_side = "left"  # generation continues from the right end of each row
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        # Stop strings the tokenizer holds as one special token end generation as token ids
        # (decoded text never shows them); the others are matched in the text.
        self.end_ids = end_token_ids(self.format, tokenizer)
        special = special_stop_ids(self.format, tokenizer)
        self.text_stops = [stop for stop in self.format.stop if stop not in special]
        self.states_per_call_limit: int | None = None  # lowered by an out-of-memory error
        self.forward_cache_argument, self.generate_cache_argument = cache_arguments(model)
        fit_prompt(self.format, "", self.count_tokens, config.max_prompt_tokens)  # fails early if too long
        torch.manual_seed(config.seed)  # sampling uses torch's global generator

    @classmethod
    def from_config(cls, config: HFConfig) -> "HFPolicy":
        """Load ``config.model`` (a local directory or a hub id) and wrap it."""
        model, tokenizer = load_model(
            config.model, config.device, trust_remote_code=config.trust_remote_code, dtype=config.dtype
        )
        recorded = recorded_settings(config.model)
        if recorded.get("prompt") and recorded["prompt"] != config.prompt:
            log.info("model %s was trained on the '%s' prompt; using it", config.model, recorded["prompt"])
            config = replace(config, prompt=recorded["prompt"])
        if recorded.get("max_prompt_tokens", config.max_prompt_tokens) < config.max_prompt_tokens:
            # Longer prompts than it was trained on only run past its position embeddings.
            config = replace(config, max_prompt_tokens=recorded["max_prompt_tokens"])
        return cls(model, tokenizer, config)

    @property
    def device(self):
        return self.model.device

    def _propose_prompts(self, prompts: list[str], k: int) -> list[list[Proposal]]:
        """``k`` candidates per prompt (see ``PromptedPolicy.propose``).

        The prompts go through as few ``generate`` calls as fit in memory (see the module
        docstring); a call that runs out of GPU memory is halved and retried.
        """
        per_call = self.states_per_call(prompts, k)
        results: list[list[Proposal]] = []
        while len(results) < len(prompts):
            part = prompts[len(results) : len(results) + per_call]
            try:
                results.extend(self._generate(part, k))
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
                _free_cuda_cache()
                if len(part) == 1:
                    raise GenerationOutOfMemory(
                        f"the model ran out of GPU memory generating {k} candidates for one state "
                        f"({self.config.max_new_tokens} new tokens); lower --tactics-per-node, --max-new-tokens "
                        "or --max-prompt-tokens"
                    ) from exc
                per_call = max(1, len(part) // 2)
                self.states_per_call_limit = per_call
                log.warning("out of GPU memory with %d states per generate call; retrying with %d", len(part), per_call)
        return results

    def states_per_call(self, prompts: Sequence[str], k: int) -> int:
        """How many of ``prompts`` one ``generate`` call takes: all of them, unless their
        estimated memory (``generation_bytes_per_state``) exceeds the budget, or an
        out-of-memory error has lowered the limit."""
        limit = len(prompts)
        if self.states_per_call_limit is not None:
            limit = min(limit, self.states_per_call_limit)
        budget = self.memory_budget_bytes()
        if budget is not None:
            prompt_tokens = max(self.count_tokens(prompt) for prompt in prompts)
            per_state = generation_bytes_per_state(
                self.model,
                sequences=self._sequences_per_state(k),
                prompt_tokens=prompt_tokens,
                new_tokens=self.config.max_new_tokens,
            )
            limit = min(limit, max(1, int(budget // per_state)))
        return max(1, limit)

    def memory_budget_bytes(self) -> float | None:
        """``--gpu-memory-gb`` in bytes; else a share of the GPU's free memory; None on the CPU."""
        if self.config.gpu_memory_gb is not None:
            return self.config.gpu_memory_gb * GB
        device = self.model.device
        if device.type != "cuda":
            return None
        import torch

        free_bytes, _ = torch.cuda.mem_get_info(device)
        return free_bytes * FREE_MEMORY_SHARE

    def _sequences_per_state(self, k: int) -> int:
        if self.config.decoding == "sampling" and self.config.temperature == 0:
            return 1
        return k

    def _generate(self, prompts: list[str], k: int) -> list[list[Proposal]]:
        """One ``generate`` call for ``prompts``: k candidates each."""
        import torch

        greedy = self.config.decoding == "sampling" and self.config.temperature == 0
        beam = self.config.decoding == "beam" and k > 1
        num_return = 1 if greedy else k
        encoded = self.tokenizer(prompts, return_tensors="pt", padding=True)
        # Only these two: some tokenizers add token_type_ids, which generate() refuses for causal LMs.
        batch = {key: encoded[key].to(self.device) for key in ("input_ids", "attention_mask")}
        options = dict(
            max_new_tokens=self.config.max_new_tokens,
            num_return_sequences=num_return,
            return_dict_in_generate=True,
            output_logits=True,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=sorted(self.end_ids) or None,
        )
        if beam and not self.beam_rule.transformers_native:
            return self._stepwise_beam_search(prompts, k)
        if beam:
            # transformers' own beam search: length_penalty 0 ranks finished beams by their
            # summed log-prob, 1 by its mean over generated tokens (--beam-ranking).
            options.update(
                do_sample=False, num_beams=k, length_penalty=0.0 if self.config.beam_ranking == "sum" else 1.0
            )
        elif greedy or self.config.decoding == "beam":
            options.update(do_sample=False, num_beams=1)
        else:
            options.update(do_sample=True, temperature=self.config.temperature, top_p=self.config.top_p, top_k=0)
        if self.text_stops:
            # Stops each row at "---" instead of running to max_new_tokens; the cut below
            # does not depend on it.
            options.update(stop_strings=self.text_stops, tokenizer=self.tokenizer)
        with torch.inference_mode(), library_output_to_log():
            if num_return > 1 and not beam and self.generate_cache_argument is not None:
                batch = self._prefill_once(batch, num_return, options)
            output = self.model.generate(**batch, **options)
        generated = output.sequences[:, batch["input_ids"].shape[1] :]
        token_logprobs = _token_logprobs(output, generated)
        return self._proposals(generated.tolist(), token_logprobs.tolist(), len(prompts), num_return, k)

    def _prefill_once(self, batch, copies: int, options: dict) -> dict:
        """Run each prompt through the model once and give its cache to ``copies`` samples.

        ``generate`` with ``num_return_sequences=k`` would copy each prompt k times before
        the prefill, doing the prompt's (usually dominant) work k times over.
        """
        from transformers import DynamicCache

        ids, mask = batch["input_ids"], batch["attention_mask"]
        cache = DynamicCache(config=self.model.config)
        # Left padding: positions count real tokens only, as generate() computes them.
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        self.model(
            input_ids=ids[:, :-1],
            attention_mask=mask[:, :-1],
            position_ids=positions[:, :-1],
            use_cache=True,
            **{self.forward_cache_argument: cache},
        )
        cache.batch_repeat_interleave(copies)
        options["num_return_sequences"] = 1
        return {
            "input_ids": ids.repeat_interleave(copies, dim=0),
            "attention_mask": mask.repeat_interleave(copies, dim=0),
            self.generate_cache_argument: cache,
        }

    def _stepwise_beam_search(self, prompts: list[str], k: int) -> list[list[Proposal]]:
        """Beam search one token at a time on the model and a ``DynamicCache``, for the
        rules transformers' ``generate`` does not have (``prover.policies.beams``): every
        running beam of every prompt is a row of one forward pass per step, and the cache
        follows the surviving beams (``reorder_cache``)."""
        import torch
        from transformers import DynamicCache

        rule, eos = self.beam_rule, self.tokenizer.eos_token_id
        encoded = self.tokenizer(prompts, return_tensors="pt", padding=True)
        ids, mask = encoded["input_ids"].to(self.device), encoded["attention_mask"].to(self.device)
        searches = [BeamState(int(mask[row].sum())) for row in range(len(prompts))]
        for row, search in enumerate(searches):
            search.running[0].parent = row
        cache = DynamicCache(config=self.model.config)
        cache_argument = {self.forward_cache_argument: cache}
        positions = (mask.cumsum(-1) - 1).clamp(min=0)  # left padding: real tokens only
        steps = self.config.max_new_tokens
        with torch.inference_mode():
            logits = self.model(
                input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, **cache_argument
            ).logits[:, -1]
            for step in range(steps):
                top_logprobs, top_tokens = torch.log_softmax(logits.float(), dim=-1).topk(2 * k, dim=-1)
                top_logprobs, top_tokens = top_logprobs.tolist(), top_tokens.tolist()
                for search in searches:
                    expansions = [
                        (beam.logprob + logprob, beam, token, logprob)
                        for beam in search.running
                        for logprob, token in zip(top_logprobs[beam.parent], top_tokens[beam.parent])
                    ]
                    if expansions:
                        advance(search, expansions, k, rule, self.ends_tactic, eos, last_step=step == steps - 1)
                running = [beam for search in searches for beam in search.running]
                if not running:
                    break
                rows = torch.tensor([beam.parent for beam in running], device=self.device)
                cache.reorder_cache(rows)
                mask = torch.cat([mask[rows], mask.new_ones(len(running), 1)], dim=-1)
                for row, beam in enumerate(running):
                    beam.parent = row
                next_ids = torch.tensor([[beam.tokens[-1]] for beam in running], device=self.device)
                logits = self.model(
                    input_ids=next_ids,
                    attention_mask=mask,
                    position_ids=mask.sum(-1, keepdim=True) - 1,
                    use_cache=True,
                    **cache_argument,
                ).logits[:, -1]
        return [
            to_proposals(self.beam_candidates(final_beams(search, k, rule, eos)), self.config.length_normalise)
            for search in searches
        ]

    def _proposals(self, generated, token_logprobs, num_states, num_return, k) -> list[list[Proposal]]:
        decode = lambda ids: self.tokenizer.decode(ids, skip_special_tokens=True)  # noqa: E731
        results = []
        for s in range(num_states):
            candidates = []
            for row in range(s * num_return, (s + 1) * num_return):
                cut = cut_continuation(self.format, generated[row], decode, self.end_ids)
                candidates.append((cut.tactic, sum(token_logprobs[row][cut.start : cut.end]), cut.num_tokens))
            results.append(to_proposals(candidates, self.config.length_normalise))
        return results


def cache_arguments(model) -> tuple[str, str | None]:
    """The keyword that hands a KV cache to ``model``'s forward, and to ``generate`` (None:
    do not hand ``generate`` one).

    transformers 5.x renamed ``past_key_values`` to ``cache`` and marked the old name for
    removal (forward: 5.40, ``generate``: 6.0); 4.56-4.57 know only the old one. A model
    whose own code (``trust_remote_code``) still takes ``past_key_values`` under a
    transformers that renamed it is given no cache by hand in ``generate``."""
    import inspect

    from transformers import LlamaForCausalLM

    def takes_cache(forward) -> bool:
        return "cache" in inspect.signature(forward).parameters

    if takes_cache(model.forward):
        return "cache", "cache"
    if takes_cache(LlamaForCausalLM.forward):
        return "past_key_values", None  # the model's code predates the rename
    return "past_key_values", "past_key_values"


def generation_bytes_per_state(model, sequences: int, prompt_tokens: int, new_tokens: int) -> int:
    """Estimated memory one state takes in a ``generate`` call: the KV cache of its
    ``sequences`` rows of ``prompt_tokens + new_tokens`` tokens (2 x layers x KV heads x head
    dim in the model's dtype per token), and the float32 logits kept for every new token."""
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    kv_per_token = 2 * config.num_hidden_layers * kv_heads * head_dim * model.dtype.itemsize
    logits_per_token = config.vocab_size * 4
    return sequences * ((prompt_tokens + new_tokens) * kv_per_token + new_tokens * logits_per_token)


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is a GPU out-of-memory error (torch's own, or a RuntimeError saying so,
    as some kernels raise)."""
    import torch

    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def _free_cuda_cache() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _token_logprobs(output, generated):
    """Log-prob, under the raw model, of each generated token: shape (rows, new tokens).

    With beam search, row ``i`` of step ``t``'s logits is not sequence ``i``'s ancestor;
    ``beam_indices`` says which row it came from (-1 once the beam has finished).
    """
    import torch

    rows = generated.shape[0]
    beam_indices = getattr(output, "beam_indices", None)
    result = torch.zeros(rows, generated.shape[1], dtype=torch.float32)
    for t, logits in enumerate(output.logits[: generated.shape[1]]):
        source = torch.arange(rows, device=logits.device)
        if beam_indices is not None:
            source = beam_indices[:, t].to(logits.device).clamp(min=0)
        logprobs = torch.log_softmax(logits[source].float(), dim=-1)
        chosen = logprobs.gather(1, generated[:, t : t + 1].to(logits.device)).squeeze(1)
        result[:, t] = chosen.cpu()
    return result


def recorded_settings(model: str) -> dict:
    """What a model directory's ``prover_policy.json`` records (prompt format, prompt-token
    limit), or {} where there is none."""
    path = Path(model).expanduser() / POLICY_METADATA
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return settings if isinstance(settings, dict) else {}


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` where a GPU is visible, else ``cpu``; asking for a missing GPU fails."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise MissingDependencyError(
            f"--device {device} was asked for, but torch sees no CUDA GPU here; use --device cpu or auto"
        )
    return device


def load_model(
    model: str, device: str = "auto", trust_remote_code: bool = False, flag: str = "--model", dtype: str = "bfloat16"
):
    """``(model, tokenizer)`` for a local directory or a hub id, ready to generate.

    Every failure is one ``ProverError`` sentence: a missing directory, a hub id that is
    neither cached nor downloadable, a missing GPU; ``flag`` is the option it tells the
    user to fix (``--critic`` for a value model). ``trust_remote_code`` lets a model
    repository's own Python code run (InternLM2 needs it). ``dtype`` is the weights' type on
    a GPU (``auto``: the model's own); on the CPU they are float32, since half-precision
    matrix products there are slow or missing.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = resolve_device(device)
    source = _model_source(model, flag)
    if device.startswith("cuda"):
        dtype = "auto" if dtype == "auto" else getattr(torch, dtype)
    else:
        dtype = torch.float32
    placement: dict = {}
    if device == "cuda" and torch.cuda.device_count() > 1 and _has_accelerate():
        placement = {"device_map": "auto"}

    def load(**kwargs):
        if trust_remote_code:
            kwargs["trust_remote_code"] = True
        with library_output_to_log():
            tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
            loaded = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **placement, **kwargs)
        return loaded, tokenizer

    if isinstance(source, Path):
        try:
            loaded, tokenizer = load()
        except (OSError, ValueError) as exc:
            raise ProverError(f"cannot load model from {source}: {_first_line(exc)}") from None
    else:
        try:
            loaded, tokenizer = load(local_files_only=True)  # the hub cache first: no network wait
        except OSError:
            if not _hub_reachable():
                raise MissingDependencyError(
                    f"cannot load model '{model}': it is not a local directory and could not be "
                    f"downloaded (no network?); pass {flag} PATH to a local copy"
                ) from None
            try:
                loaded, tokenizer = load()
            except (OSError, ValueError) as exc:
                raise ProverError(
                    f"cannot load model '{model}' from the Hugging Face hub: {_first_line(exc)}"
                ) from None
    if not placement:
        loaded = loaded.to(device)
    return loaded, tokenizer


def _model_source(model: str, flag: str = "--model") -> Path | str:
    """A local directory as a Path, or a hub id as a string; a missing path fails here."""
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise ProverError(f"cannot load model '{model}': it is a file, not a model directory")
    # "org/name" is a hub id; anything else that looks like a path is a missing directory.
    looks_like_path = model.startswith((".", "/", "~")) or model.count("/") > 1 or (os.sep != "/" and os.sep in model)
    if looks_like_path:
        raise ProverError(f"cannot load model '{model}': no such directory; pass {flag} PATH to a model directory")
    return model


def _hub_reachable(timeout_s: float = 3.0) -> bool:
    """Whether the Hugging Face hub answers at all, checked before a download is tried
    because the hub client otherwise retries for half a minute without a network."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout_s).close()
        return True
    except OSError:
        return False


def _has_accelerate() -> bool:
    try:
        import accelerate  # noqa: F401
    except ImportError:
        return False
    return True


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def build(config: HFConfig) -> HFPolicy:
    """An ``HFPolicy`` with ``config.model`` loaded."""
    return HFPolicy.from_config(config)
