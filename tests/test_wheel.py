"""The built wheel stands on its own: installed into a fresh virtual environment, away from
this checkout and from ``../shared``, the offline jobs run on the data it ships.

The wheel is built from a copy of the checkout (so no ``build/`` left by an earlier build can
slip stale files in) without network or build isolation. The fresh environment sees the test
environment's installed dependencies (torch, ray, networkx, ...) through a ``.pth`` file of
plain paths, which Python adds to ``sys.path`` without running the ``.pth`` files found there,
so the editable install of this checkout does not leak in. It takes a few seconds (the
jobs import torch and Ray lazily), so it is not marked slow.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
THEOREM = "mathd_algebra_478"
DATA_FILES = ("minif2f.jsonl", "tactic_traces.jsonl", "repl_fixtures.jsonl", "DATA.md")
# Not copied into the build: environments, caches, earlier build outputs, Lean builds, runs.
NOT_SOURCE = shutil.ignore_patterns(
    ".git",
    ".venv",
    "venv",
    "build",
    "dist",
    "runs",
    "*.egg-info",
    "__pycache__",
    "*.pyc",
    ".pytest_cache",
    ".lake",
)


def _run(args: list, cwd: Path, env: dict[str, str], timeout_s: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout_s)


def _explain(result: subprocess.CompletedProcess) -> str:
    return (
        f"{' '.join(result.args)} exited {result.returncode}\n"
        f"--- stdout ---\n{result.stdout[-3000:]}\n--- stderr ---\n{result.stderr[-3000:]}"
    )


def _dependency_dirs() -> list[str]:
    """The site-packages directories of the running interpreter (the test environment's may
    lie inside this checkout, as ``.venv``; the checkout's own code is not in them)."""
    dirs = []
    for entry in sys.path:
        path = Path(entry or ".").resolve()
        if path.name in ("site-packages", "dist-packages") and path.is_dir():
            dirs.append(str(path))
    return list(dict.fromkeys(dirs))


class Installed:
    """The wheel, the fresh environment it is installed in, and a working directory there."""

    def __init__(self, wheel: Path, venv: Path, site_packages: Path, workdir: Path):
        self.wheel, self.venv, self.site_packages, self.workdir = wheel, venv, site_packages, workdir
        self.env = {
            k: v for k, v in os.environ.items() if k not in ("PROVER_DATA", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")
        }
        self.env["VIRTUAL_ENV"] = str(venv)
        self.env["PATH"] = f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def prover(self, *args: str, timeout_s: float = 300) -> subprocess.CompletedProcess:
        return _run([self.venv / "bin" / "prover", *args], self.workdir, self.env, timeout_s)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    root = tmp_path_factory.mktemp("wheel")
    source, wheels, venv, workdir = root / "source", root / "wheels", root / "venv", root / "work"
    shutil.copytree(REPO_ROOT, source, ignore=NOT_SOURCE)
    workdir.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PROVER_DATA", "PYTHONPATH")}

    built = _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", wheels, source],
        root,
        env,
    )
    assert built.returncode == 0, _explain(built)
    [wheel] = wheels.glob("lean_prover-*.whl")

    made = _run([sys.executable, "-m", "venv", "--without-pip", venv], root, env)
    assert made.returncode == 0, _explain(made)
    purelib = _run(
        [venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], root, env
    )
    site_packages = Path(purelib.stdout.strip())
    (site_packages / "test-environment.pth").write_text("\n".join(_dependency_dirs()) + "\n", encoding="utf-8")

    # pip itself comes from the test environment through that .pth file.
    added = _run([venv / "bin" / "python", "-m", "pip", "install", "--no-deps", "--no-index", wheel], root, env)
    assert added.returncode == 0, _explain(added)
    return Installed(wheel, venv, site_packages, workdir)


@pytest.fixture(scope="module")
def attack_run(installed):
    before = set(installed.workdir.rglob("*.json"))
    result = installed.prover("attack", THEOREM, "--env", "replay", "--policy", "replay")
    trees = sorted(set(installed.workdir.rglob("*.json")) - before)
    return result, trees


def test_wheel_holds_the_data_files_and_the_viewer_assets(installed):
    names = set(zipfile.ZipFile(installed.wheel).namelist())

    for name in DATA_FILES:
        assert f"prover/data/{name}" in names
    assets = sorted(p.name for p in (REPO_ROOT / "prover" / "views" / "assets").iterdir() if p.is_file())
    assert assets and all(f"prover/views/assets/{name}" in names for name in assets)


def test_wheel_ships_every_non_python_file_of_the_package(installed):
    # A data file added under prover/ without a package-data pattern would be lost here.
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    package_files = [
        p.relative_to(REPO_ROOT).as_posix()
        for p in (REPO_ROOT / "prover").rglob("*")
        if p.is_file()
        and p.suffix not in (".py", ".pyc")
        and "__pycache__" not in p.parts
        and not p.name.startswith(".")
    ]

    assert [name for name in package_files if name not in names] == []


def test_wheel_data_files_are_the_checkout_ones(installed):
    with zipfile.ZipFile(installed.wheel) as wheel:
        for name in DATA_FILES:
            assert wheel.read(f"prover/data/{name}") == (REPO_ROOT / "prover" / "data" / name).read_bytes(), name


def test_installed_package_is_the_wheel_not_the_checkout(installed):
    # find_spec locates prover.cli without running it.
    probe = (
        "import importlib.util, json, prover, prover.data; "
        "print(json.dumps({'path': list(prover.__path__), 'cli': importlib.util.find_spec('prover.cli').origin, "
        "'data': prover.data.__file__, 'data_dir': str(prover.data.data_dir())}))"
    )

    result = _run([installed.python, "-c", probe], installed.workdir, installed.env)

    assert result.returncode == 0, _explain(result)
    found = json.loads(result.stdout)
    site_packages = installed.site_packages.resolve()
    for where in [*found["path"], found["cli"], found["data"], found["data_dir"]]:
        assert site_packages in Path(where).resolve().parents, f"{where} is not in {site_packages}"


def test_attack_proves_a_replay_theorem_from_the_shipped_traces(installed, attack_run):
    result, trees = attack_run
    recorded = {
        json.loads(line)["tactic"]
        for line in (REPO_ROOT / "prover/data/tactic_traces.jsonl").read_text(encoding="utf-8").splitlines()
        if json.loads(line)["theorem"] == THEOREM
    }

    assert result.returncode == 0, _explain(result)
    assert any(tactic in result.stdout for tactic in recorded), _explain(result)
    assert len(trees) == 1, f"expected one saved tree under {installed.workdir}, found {trees}"


def test_viz_writes_a_page_with_the_assets_inlined(installed, attack_run):
    _, trees = attack_run
    if len(trees) != 1:
        pytest.fail(f"attack saved no single tree to show ({trees})")
    before = set(installed.workdir.rglob("*.html"))

    result = installed.prover("viz", str(trees[0]))

    assert result.returncode == 0, _explain(result)
    pages = sorted(set(installed.workdir.rglob("*.html")) - before)
    assert len(pages) == 1, f"expected one HTML page under {installed.workdir}, found {pages}"
    page = pages[0].read_text(encoding="utf-8")
    with zipfile.ZipFile(installed.wheel) as wheel:
        for asset in ("tree_view.css", "tree_view.js"):
            assert wheel.read(f"prover/views/assets/{asset}").decode("utf-8") in page, asset
    assert THEOREM in page


def test_prove_split_runs_on_the_shipped_traces(installed):
    result = installed.prover("prove-split", "--env", "replay", "--limit", "5", "--num-workers", "0", "--out", "runs/x")

    assert result.returncode == 0, _explain(result)
    results = installed.workdir / "runs" / "x" / "results.jsonl"
    lines = [line for line in results.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(lines) == 5
