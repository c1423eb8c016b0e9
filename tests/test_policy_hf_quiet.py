"""transformers' own output stays off the prover's terminal: no "Loading weights" bars, and
its FutureWarnings go to the log (the ``prover.policies.hf`` logger), not to stderr."""

from __future__ import annotations

import logging
import warnings

from prover.policies.hf import HFConfig, HFPolicy, load_model

from tests.tiny_llama import STATES, session_tiny_llama


def test_loading_and_sampling_print_nothing_to_the_terminal(tmp_path_factory, capfd, caplog, monkeypatch):
    directory = session_tiny_llama(tmp_path_factory)
    capfd.readouterr()
    with caplog.at_level(logging.INFO, logger="prover.policies.hf"):
        model, tokenizer = load_model(str(directory), "cpu")
        generate = model.generate

        def warning_generate(*args, **kwargs):  # as transformers does when it renames an argument
            warnings.warn("`past_key_values` is deprecated; use `cache` instead", FutureWarning, stacklevel=2)
            return generate(*args, **kwargs)

        monkeypatch.setattr(model, "generate", warning_generate)
        policy = HFPolicy(model, tokenizer, HFConfig(max_new_tokens=6, decoding="sampling", temperature=1.0))
        proposals = policy.propose(list(STATES[:2]), k=3)  # sampling k > 1: the prefill-once path
        policy.propose(list(STATES[:1]), k=3)  # the same warning again: logged once
    out, err = capfd.readouterr()
    assert len(proposals) == 2
    # Before: "Loading weights: 100%|…" and "FutureWarning: `past_key_values` is deprecated…" on stderr.
    assert "Loading weights" not in err and "Warning" not in err and "%|" not in err, err
    assert out == ""
    logged = [r.getMessage() for r in caplog.records if r.name == "prover.policies.hf"]
    deprecations = [message for message in logged if "`past_key_values` is deprecated" in message]
    assert len(deprecations) == 1 and deprecations[0].startswith("FutureWarning: ")  # in the log, once


def test_the_progress_bars_come_back_after_loading(tmp_path_factory):
    from transformers.utils import logging as hf_logging

    before = hf_logging.is_progress_bar_enabled()  # another test (iterate) may have turned them off
    hf_logging.enable_progress_bar()
    try:
        load_model(str(session_tiny_llama(tmp_path_factory)), "cpu")
        assert hf_logging.is_progress_bar_enabled()  # only the prover's own calls are quiet
    finally:
        if not before:
            hf_logging.disable_progress_bar()
