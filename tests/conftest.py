"""Shared test set-up: the shipped data, Ray once per session, and skips for lean/gpu tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from prover.data import minif2f_path as shipped_minif2f_path
from prover.data import traces_path as shipped_traces_path


def _has_gpu() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    skip_lean = pytest.mark.skip(reason="needs a Lean toolchain: `lake` is not on PATH here")
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU, and none is visible here")
    has_lake = shutil.which("lake") is not None
    has_gpu = None
    for item in items:
        if "lean" in item.keywords and not has_lake:
            item.add_marker(skip_lean)
        if "gpu" in item.keywords:
            if has_gpu is None:
                has_gpu = _has_gpu()
            if not has_gpu:
                item.add_marker(skip_gpu)


@pytest.fixture(scope="session")
def traces_path() -> Path:
    """The recorded miniF2F traces shipped with the package."""
    return shipped_traces_path()


@pytest.fixture(scope="session")
def minif2f_path() -> Path:
    """The miniF2F statements shipped with the package."""
    return shipped_minif2f_path()


@pytest.fixture(scope="session")
def ray_local(tmp_path_factory):
    """Ray on 2 CPUs, started once per test session (starting it takes seconds).

    Yields the cluster's address, so a subprocess can join it with ``--ray-address``. Its
    workers start Lean (the stand-in) in the sandbox; they take their environment from this
    process now, before any test's ``install`` names its own ``tmp_path`` writable, so the
    session's temporary root is the directory the sandbox leaves writable for them (the
    stand-in writes its logs there; the rest of the file system stays read-only).
    """
    ray = pytest.importorskip("ray", reason="the distributed tests need Ray (pip install 'ray[default]')")
    import logging
    import os

    writable = [p for p in os.environ.get("PROVER_SANDBOX_WRITABLE", "").split(os.pathsep) if p]
    os.environ["PROVER_SANDBOX_WRITABLE"] = os.pathsep.join([*writable, str(tmp_path_factory.getbasetemp().resolve())])
    context = ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    yield context.address_info["gcs_address"]
    ray.shutdown()
