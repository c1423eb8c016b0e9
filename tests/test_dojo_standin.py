"""``--env dojo`` end to end through the real ``lean_dojo`` on the stand-in Lean toolchain.

A small git repository stands in for yangky11/miniF2F-lean4 (recorded test theorems in
``MiniF2F/Test.lean``, an empty ``MiniF2F/Valid.lean``); ``prover setup-lean`` clones it
into a copy of the Lean project and traces it into a LeanDojo cache of the test's own,
then ``prover attack --env dojo`` runs in fresh interpreters (LeanDojo reads its settings
at import) with the stand-in's ``lake`` and ``lean`` on PATH and every network call made to
fail (a proxy that refuses connections), so nothing here needs Lean or a network.

One substitution, made in the setup-lean subprocess only: LeanDojo's own tracing looks up
the Lean toolchain's commit on api.github.com (``TracedRepo.from_traced_files``); the
fixture runs ``prover setup-lean`` with ``prover.envs.dojo.trace_into_cache`` replaced by
the stand-in's ``trace_into_cache``, the same real LeanDojo steps around that one call.
``test_setup_lean_traces_with_leandojos_own_tracing`` runs it unreplaced.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("lean_dojo")

from prover.data import traces_path
from prover.envs.lean import minif2f_checkout
from prover.settings import REPO_ROOT
from prover.theorem_sets import minif2f

from tests.lean_standin import install, lean_dojo_env, make_git_repo, minif2f_source, read_log, write_traces

pytestmark = pytest.mark.standin

# Recorded test-split theorems; mathd_algebra_478 falls to `nlinarith` in one step.
THEOREMS = ["mathd_algebra_478", "amc12_2001_p5", "mathd_numbertheory_3", "mathd_algebra_33"]
PROVED_BY = {"mathd_algebra_478": "nlinarith"}
# The prover's CLI in a fresh interpreter, with LeanDojo's own tracing replaced by the stand-in's.
TRACE_SHIM = (
    "import sys; import prover.envs.dojo as dojo; "
    "from tests.lean_standin.dojo_driver import trace_into_cache; dojo.trace_into_cache = trace_into_cache; "
    "from prover.cli import main; main(sys.argv[1:])"
)
OFFLINE = {
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "HTTP_PROXY": "http://127.0.0.1:9",
    "https_proxy": "http://127.0.0.1:9",
    "http_proxy": "http://127.0.0.1:9",
    "NO_PROXY": "",
    "no_proxy": "",
}


def prover(env: dict, *args: str, shim: bool = False, cwd: Path | None = None, timeout: float = 120):
    command = [sys.executable, "-c", TRACE_SHIM, *args] if shim else [sys.executable, "-m", "prover.cli", *args]
    return subprocess.run(command, env=env, cwd=cwd or REPO_ROOT, capture_output=True, text=True, timeout=timeout)


def lean_project_copy(path: Path) -> Path:
    path.mkdir(parents=True)
    for name in ("lakefile.lean", "lean-toolchain", "lake-manifest.json", "LeanProver.lean"):
        shutil.copy(REPO_ROOT / "lean_project" / name, path / name)
    return path


def standin_minif2f(root: Path, minif2f_path: Path, names: list[str]) -> tuple[Path, str]:
    """A git repository laid out as miniF2F-lean4, holding ``names`` in its test file."""
    files = {
        "MiniF2F/Test.lean": minif2f_source(names, minif2f_path),
        "MiniF2F/Valid.lean": minif2f_source([], minif2f_path),
    }
    return root / "miniF2F-src", make_git_repo(root / "miniF2F-src", files)


def native_decide_record(theorem: str) -> dict:
    """A synthetic record (not real Lean output): `native_decide` closes ``theorem``'s goal."""
    with open(traces_path(), encoding="utf-8") as lines:
        first = next(r for r in map(json.loads, lines) if r["theorem"] == theorem and r.get("step") == 0)
    return {
        "theorem": theorem,
        "state_before": first["state_before"],
        "tactic": "native_decide",
        "state_after": "no goals",
        "proof_finished": True,
        "source": "synthetic",
    }


@pytest.fixture(scope="module")
def standin(tmp_path_factory, minif2f_path) -> dict:
    """``prover setup-lean`` run against the stand-in (the REPL step builds the stand-in's
    REPL, as ``--env repl`` would run it): the environment, project and output."""
    root = tmp_path_factory.mktemp("dojo-standin")
    extra = write_traces(root / "native.jsonl", [native_decide_record("mathd_numbertheory_3")])
    source, commit = standin_minif2f(root, minif2f_path, THEOREMS)
    env = {
        **install(root, traces=[traces_path(), extra]),
        **lean_dojo_env(root),
        **OFFLINE,
        "PYTHONPATH": str(REPO_ROOT),
        "PROVER_MINIF2F_URL": str(source),
        "PROVER_MINIF2F_COMMIT": commit,
    }
    env.pop("DISABLE_REMOTE_CACHE")  # the prover sets it itself (else the offline clone fails)
    project = lean_project_copy(root / "lean_project")
    setup = prover(
        env,
        "setup-lean",
        "--lean-project",
        str(project),
        "--repl-path",
        env["LEAN_STANDIN_REPL_DIR"],
        "--lake-path",
        env["LEAN_STANDIN_LAKE"],
        shim=True,
    )
    assert setup.returncode == 0, setup.stdout + setup.stderr
    return {
        "root": root,
        "env": env,
        "project": project,
        "commit": commit,
        "setup": setup,
        "cache": Path(env["CACHE_DIR"]),
        "setup_log": read_log(env),
    }


def attack(standin: dict, name: str, *args: str, env: dict | None = None, tree: str = "tree.json"):
    """``prover attack NAME --env dojo`` on the stand-in project; (process, saved record)."""
    tree_path = standin["root"] / tree
    tree_path.unlink(missing_ok=True)
    done = prover(
        env or standin["env"],
        "attack",
        name,
        "--env",
        "dojo",
        "--lean-project",
        str(standin["project"]),
        "--policy",
        "fixed",
        "--tree-out",
        str(tree_path),
        *args,
    )
    record = json.loads(tree_path.read_text())["graph"]["result"] if tree_path.exists() else None
    return done, record


# -- prover setup-lean -----------------------------------------------------------------------


@pytest.mark.slow
def test_setup_lean_clones_minif2f_at_its_commit_and_traces_the_checkout_into_leandojos_cache(standin):
    checkout = minif2f_checkout(standin["project"])
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=checkout, capture_output=True, text=True).stdout.strip()
    assert head == standin["commit"]
    entry = standin["cache"] / f"gitpython-miniF2F-lean4-{standin['commit']}" / "miniF2F-lean4"
    assert (entry / "Lean4Repl.lean").is_file() and (entry / ".lake/build/ir/MiniF2F/Test.ast.json").is_file()
    out = standin["setup"].stdout
    assert [line.split("   ")[0] for line in out.splitlines() if line.startswith("$ ")] == [
        "$ lake exe cache get",
        "$ lake build",
        f"$ git clone --quiet --no-checkout {standin['env']['PROVER_MINIF2F_URL']} {checkout}",
        f"$ git -C {checkout} checkout --quiet {standin['commit']}",
    ]
    assert f"tracing {checkout} at {standin['commit'][:12]} with LeanDojo" in out and "traced in" in out
    # LeanDojo built the checkout's copy with the stand-in's Lake: the Lean project first, then the trace.
    builds = [Path(e["cwd"]).name for e in standin["setup_log"] if e["argv"][1:] == ["build"]]
    assert builds == ["lean_project", "repl", "miniF2F-lean4"]  # the project, the Lean REPL, the trace
    again = prover(standin["env"], "setup-lean", "--lean-project", str(standin["project"]), "--skip-repl")
    assert again.returncode == 0 and "has traced miniF2F-lean4" in again.stdout  # no second trace, no GitHub


@pytest.mark.slow
def test_setup_lean_traces_with_leandojos_own_tracing(tmp_path, minif2f_path):
    """Unreplaced, the product calls LeanDojo's ``get_traced_repo_path``: it runs the whole
    trace and, offline, stops at its one GitHub call, said in one sentence."""
    source, commit = standin_minif2f(tmp_path, minif2f_path, THEOREMS[:1])
    env = {
        **install(tmp_path, traces=traces_path()),
        **lean_dojo_env(tmp_path),
        **OFFLINE,
        "PROVER_MINIF2F_URL": str(source),
        "PROVER_MINIF2F_COMMIT": commit,
    }
    project = lean_project_copy(tmp_path / "lean_project")
    done = prover(env, "setup-lean", "--lean-project", str(project), "--skip-repl")
    if done.returncode == 0:  # a machine that reaches api.github.com traces end to end
        return
    assert done.returncode == 2
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith(f"error: LeanDojo could not trace {minif2f_checkout(project)}")
    assert [e["argv"][1:] for e in read_log(env)][-1] == ["build", "Lean4Repl"]  # the whole trace ran before


# -- prover attack --env dojo ------------------------------------------------------------------


@pytest.mark.slow
def test_attack_proves_a_theorem_of_the_checkout_and_rechecks_it_through_lake(standin):
    before = len(read_log(standin["env"]))
    done, record = attack(standin, "mathd_algebra_478", "--tactic", PROVED_BY["mathd_algebra_478"])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "proved mathd_algebra_478" in done.stdout and record["status"] == "proved"
    entry = standin["cache"] / f"gitpython-miniF2F-lean4-{standin['commit']}" / "miniF2F-lean4"
    calls = [e for e in read_log(standin["env"])[before:] if e["tool"] == "lean"]
    # The search's Dojo, then the whole file with `#print axioms` (no re-check Dojo), both
    # in LeanDojo's traced copy of the local checkout (a `gitpython-` cache entry).
    assert [Path(e["cwd"]) for e in calls] == [entry] * 2
    assert [Path(e["argv"][-1]).name.startswith("Test_check_") for e in calls] == [False, True]


@pytest.mark.slow
def test_startup_has_its_own_timeout_and_the_search_budget_starts_after_it(standin):
    slow_start = {**standin["env"], "LEAN_STANDIN_STARTUP_DELAY_S": "2"}
    done, record = attack(
        standin,
        "mathd_algebra_478",
        "--tactic",
        "nlinarith",
        "--tactic-timeout",
        "1",
        "--startup-timeout",
        "20",
        "--time-limit",
        "1.5",
        env=slow_start,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert 2.0 <= record["startup_time_s"] < 4.0
    assert record["wall_time_s"] < 1.5 + 2.0 + 2.0  # the budget, then the re-check's own start-up


@pytest.mark.slow
def test_after_the_start_each_tactic_gets_the_tactic_timeout(standin):
    slow_linarith = {**standin["env"], "LEAN_STANDIN_SLOW_TACTIC": "linarith", "LEAN_STANDIN_TACTIC_DELAY_S": "4"}
    done, record = attack(
        standin,
        "mathd_algebra_478",
        "--tactic",
        "linarith",
        "--tactic",
        "nlinarith",
        "--tactic-timeout",
        "1",
        "--startup-timeout",
        "20",
        env=slow_linarith,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    tree = json.loads((standin["root"] / "tree.json").read_text())
    outcomes = {edge["tactic"]: edge["outcome"] for edge in tree["edges"]}
    assert outcomes["linarith"] == "timeout"  # after 1 s, not the 4 s it takes nor the 20 s start-up allowance


@pytest.mark.slow
def test_a_proof_using_ofreducebool_is_rejected_by_the_recheck_naming_the_axiom(standin):
    done, record = attack(standin, "mathd_numbertheory_3", "--tactic", "native_decide", "--allow-native-decide")
    assert done.returncode == 1, done.stdout + done.stderr
    assert record["status"] == "rejected" and record["proof"] == ["native_decide"]
    assert "the proof depends on the axiom Lean.ofReduceBool" in record["error"]
    assert "Lean.ofReduceBool" in done.stdout


def test_attack_refuses_a_typed_in_statement_with_dojo_pointing_at_repl(capsys):
    from prover.cli import main

    with pytest.raises(SystemExit) as exit_code:
        main(["attack", "--statement", "theorem two (x : ℕ) : x + 2 = 2 + x :=", "--env", "dojo", "--policy", "fixed"])
    assert exit_code.value.code == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "use --env repl for --statement" in error


# -- before any search: is the repository traced? ----------------------------------------------------


@pytest.mark.slow
def test_prove_split_stops_before_any_search_when_leandojo_has_not_traced_the_repository(standin, tmp_path):
    empty_cache = {**standin["env"], "CACHE_DIR": str(tmp_path / "empty-cache")}
    before = len(read_log(standin["env"]))
    out = tmp_path / "run"
    done = prover(
        empty_cache,
        "prove-split",
        "--env",
        "dojo",
        "--lean-project",
        str(standin["project"]),
        "--split",
        "test",
        "--policy",
        "fixed",
        "--num-workers",
        "0",
        "--out",
        str(out),
    )
    assert done.returncode == 2
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith("error: LeanDojo has not traced ") and error.endswith("run `prover setup-lean` first")
    assert not out.exists() and len(read_log(standin["env"])) == before  # no run directory, no Lean

    no_checkout = lean_project_copy(tmp_path / "bare_project")  # the shipped list, addressed on GitHub
    done = prover(
        standin["env"],
        "attack",
        "mathd_algebra_478",
        "--env",
        "dojo",
        "--lean-project",
        str(no_checkout),
        "--policy",
        "fixed",
    )
    assert done.returncode == 2 and "yangky11/miniF2F-lean4 at be1732497464" in done.stderr
    assert "prover setup-lean" in done.stderr


# -- the theorems: from the checkout ------------------------------------------------------------------


def test_lean_backends_take_minif2f_from_the_checkout_addressed_locally(tmp_path, minif2f_path):
    project = tmp_path / "lean_project"
    commit = make_git_repo(minif2f_checkout(project), {"MiniF2F/Test.lean": minif2f_source(THEOREMS, minif2f_path)})
    theorems = minif2f("test", lean_project=project)
    checkout = minif2f_checkout(project).resolve()
    assert [t.name for t in theorems] == THEOREMS
    assert {(t.repo_url, t.commit, t.file_path) for t in theorems} == {(str(checkout), commit, "MiniF2F/Test.lean")}
    source = (checkout / "MiniF2F/Test.lean").read_text()
    assert all(t.statement in source and t.header.startswith("import Mathlib") for t in theorems)
    # The offline environments (no Lean project) and a project without a checkout: the shipped list.
    assert len(minif2f("test")) == len(minif2f("test", lean_project=tmp_path / "elsewhere")) == 244


def test_an_undocumented_difference_from_the_shipped_list_is_one_warning_line(tmp_path, minif2f_path, capsys):
    rows = {r["name"]: r for r in map(json.loads, minif2f_path.read_text().splitlines()) if r["split"] == "valid"}
    changed = rows["mathd_algebra_182"]["formal_statement"].replace("21 * y + 14", "21 * y + 15")
    renamed = rows["imo_2006_p3"]["formal_statement"].replace("imo_2006_p3", "imo_2006_p6")
    text = "import MiniF2F.Minif2fImport\n\n" + "".join(
        f"{rows[n]['formal_statement']} by sorry\n\n" for n in rows if n not in ("mathd_algebra_182", "imo_2006_p3")
    )
    text += f"{renamed} by\n  sorry\n\n{changed} by sorry\n"
    project = tmp_path / "lean_project"
    commit = make_git_repo(minif2f_checkout(project), {"MiniF2F/Valid.lean": text})
    theorems = {t.name: t for t in minif2f("valid", lean_project=project)}
    assert len(theorems) == 244
    assert theorems["imo_2006_p3"].full_name == "imo_2006_p6"  # documented: renamed after the pin
    assert theorems["mathd_algebra_182"].statement == changed and theorems["mathd_algebra_182"].commit == commit
    warning = capsys.readouterr().err.splitlines()
    assert len(warning) == 1 and warning[0].startswith("warning: ") and "1 undocumented way " in warning[0]
    assert "mathd_algebra_182: statements differ" in warning[0]
    minif2f("valid", lean_project=project)
    assert capsys.readouterr().err == ""  # said once


# -- LeanDojo from threads ----------------------------------------------------------------------------

THREADS_SCRIPT = r"""
import json, os, sys, threading
from prover.envs.dojo import DojoEnv
from search import Theorem
spec = json.loads(sys.argv[1])
cwd = os.getcwd()
results, errors = [], []
def run(k):
    for _ in range(spec["starts"]):
        env = DojoEnv(tactic_timeout_s=20, startup_timeout_s=20, proof_checker=None)
        name = spec["names"][k % len(spec["names"])]
        try:
            state = env.start(Theorem(name, repo_url=spec["repo"], commit=spec["commit"],
                                      file_path="MiniF2F/Test.lean", full_name=name))
            outcome = env.run_tactic(state, spec["tactics"].get(name, "skip"))
            results.append((name, state.pp, type(outcome).__name__))
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            env.close()
threads = [threading.Thread(target=run, args=(k,)) for k in range(spec["threads"])]
for t in threads: t.start()
for t in threads: t.join()
print("THREADS " + json.dumps({"results": results, "errors": errors, "cwd_kept": os.getcwd() == cwd}))
"""


@pytest.mark.slow
def test_dojo_sessions_started_from_many_threads_all_start_and_leave_the_directory_alone(standin):
    """LeanDojo ``os.chdir``s the whole process while it starts Lean; without
    ``LEAN_DOJO_LOCK`` this gives ``DojoInitError: Unexpected EOF`` and a process left inside
    LeanDojo's cache. Tactics run from other threads meanwhile, without the lock."""
    with open(traces_path(), encoding="utf-8") as lines:
        records = [r for r in map(json.loads, lines) if r["theorem"] in THEOREMS and r.get("step") == 0]
    first = {r["theorem"]: r for r in records}
    spec = {
        "threads": 4,
        "starts": 3,
        "names": THEOREMS,
        "commit": standin["commit"],
        "repo": str(minif2f_checkout(standin["project"]).resolve()),
        "tactics": {name: record["tactic"] for name, record in first.items()},
    }
    done = subprocess.run(
        [sys.executable, "-c", THREADS_SCRIPT, json.dumps(spec)],
        env=standin["env"],
        cwd=standin["root"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = json.loads(next(line[8:] for line in done.stdout.splitlines() if line.startswith("THREADS ")))
    assert report["errors"] == [] and report["cwd_kept"]
    assert len(report["results"]) == 12
    for name, pp, outcome in report["results"]:  # every session started at its own goal
        assert pp == first[name]["state_before"] and outcome in ("TacticState", "ProofFinished")


def test_setup_lean_moves_an_earlier_checkout_to_the_asked_commit(tmp_path, minif2f_path):
    from prover.envs.lean import checkout_minif2f, git_head

    source, first = standin_minif2f(tmp_path, minif2f_path, THEOREMS[:1])
    project = tmp_path / "lean_project"
    assert git_head(checkout_minif2f(project, str(source), first, echo=lambda line: None)) == first
    (source / "MiniF2F/Test.lean").write_text(minif2f_source(THEOREMS[:2], minif2f_path))
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@localhost"]
    subprocess.run([*git, "commit", "-qam", "two theorems"], cwd=source, check=True)
    second = git_head(source)
    lines = []
    assert git_head(checkout_minif2f(project, str(source), second, echo=lines.append)) == second
    assert (
        lines[0].startswith("$ git fetch") and [t.name for t in minif2f("test", lean_project=project)] == THEOREMS[:2]
    )
    checkout_minif2f(project, str(source), second, echo=lines.append)
    assert lines[-1] == f"miniF2F is checked out at {second[:12]} in {minif2f_checkout(project)}"
