"""The stand-in ``lake``, ``lean`` and Lean REPL processes: ``toolchain.py TOOL ARGS...``.

``install()`` (in ``__init__.py``) writes the executables that run this file; the wire
protocols are those of Lean v4.20.0, Lake, LeanDojo 4.20.0's ``Lean4Repl.lean`` and the
Lean REPL that lean-interact 0.11.6 drives. What each tool serves:

- ``lake --version``; ``lake env CMD ARGS`` (runs CMD in place of itself, as Lake does
  after setting Lean's paths); ``lake build [TARGETS]`` (checks every ``.lean`` module of
  the package through the recorded steps and writes ``.lake/build/lib/lean/**.olean``);
  ``lake exe cache get`` (succeeds where the lakefile requires Mathlib, else Lake's
  ``unknown executable``); ``lake update`` and ``lake clean``.
- ``lean --version``, ``lean --print-prefix`` (a small directory under
  ``$LEAN_STANDIN_HOME/toolchain``), ``lean --run ExtractData.lean [noDeps|FILE]`` (writes
  the ``*.ast.json`` and ``*.dep_paths`` files LeanDojo's ExtractData.lean would), and
  ``lean [--threads=N] [--memory=M] FILE``: a file whose theorem's proof starts with
  ``lean_dojo_repl`` becomes LeanDojo's tactic REPL (``REPL> {json}`` lines); any other
  file is checked and Lean's messages printed (exit 1 on an error).
- ``repl``: the Lean REPL (JSON queries separated by blank lines on stdin, answers followed
  by a blank line on stdout).

The knobs, all environment variables, are described in ``__init__.py``.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import costs  # noqa: E402  (sibling modules; this file runs as a script)
import hostile  # noqa: E402
import model  # noqa: E402


def inherit_installation() -> None:
    """Fill the ``LEAN_STANDIN_*`` variables missing here from ``install``'s
    ``$LEAN_STANDIN_HOME/environment.json``: a process started by something that does not
    pass the test's environment on (a Ray worker of a cluster started earlier) still
    answers as installed. Variables that are set, even to "", win."""
    path = Path(os.environ.get("LEAN_STANDIN_HOME") or HERE) / "environment.json"
    if path.is_file():
        for name, value in json.loads(path.read_text(encoding="utf-8")).items():
            os.environ.setdefault(name, value)


inherit_installation()
LEAN_VERSION = os.environ.get("LEAN_STANDIN_LEAN_VERSION", "4.20.0")
LEAN_COMMIT = "6b6d1a7e64a4c3b0c1f5a1d2c3b4a5968778695a"  # a made-up commit hash, printed like Lean's
ELAN_NO_DEFAULT = (
    "error: no default toolchain configured. run `elan default stable` to install & configure "
    "the latest Lean 4 stable release."
)
EXTERNAL_PACKAGES = {
    "Mathlib",
    "Aesop",
    "Lean",
    "Init",
    "Std",
    "Batteries",
    "Qq",
    "ProofWidgets",
    "Plausible",
    "ImportGraph",
    "LeanSearchClient",
    "Lake",
    "Archive",
    "Counterexamples",
}


KNOB_VARIABLES = model.KNOB_VARIABLES


class Knobs:
    """The behaviours tests switch on: ``LEAN_STANDIN_*`` variables, overridden by the JSON
    object in ``$LEAN_STANDIN_KNOBS_FILE`` (re-read before every answer, so a test can
    change a running process's behaviour)."""

    def __init__(self) -> None:
        self.tactics_seen = 0
        self.started = False
        self.refresh()

    def refresh(self) -> None:
        values = {name: os.environ.get(variable, "") for name, variable in KNOB_VARIABLES.items()}
        path = os.environ.get("LEAN_STANDIN_KNOBS_FILE")
        if path and os.path.exists(path):
            try:
                overrides = json.loads(Path(path).read_text(encoding="utf-8") or "{}")
            except ValueError:
                overrides = {}
            values.update(
                {k: "" if v is None or v is False else str(v) for k, v in overrides.items() if k in KNOB_VARIABLES}
            )
        self.startup_delay_s = float(values["startup_delay_s"] or 0)
        self.tactic_delay_s = float(values["tactic_delay_s"] or 0)
        self.slow_tactic = model.normalise_tactic(values["slow_tactic"])
        self.crash_after = int(values["crash_after"]) if values["crash_after"].strip() else None
        self.crash_tactic = model.normalise_tactic(values["crash_tactic"])
        self.crash_exit_code = int(values["crash_exit_code"] or 1)
        self.crash_once = values["crash_once"]
        self.crash_prob = float(values["crash_prob"] or 0)
        self.slow_prob = float(values["slow_prob"] or 0)
        self.hostile = values["hostile"]
        costs.configure(values)
        if self.crash_prob or self.slow_prob:
            seed = f"{values['fault_seed'] or 0}:{os.getpid()}"
            if getattr(self, "_fault_seed", None) != seed:  # one stream per process and seed
                self._fault_seed, self._faults = seed, random.Random(seed)

    def before_first_answer(self) -> None:
        if not self.started:
            self.refresh()
            self.started = True
            if self.startup_delay_s > 0:
                time.sleep(self.startup_delay_s)

    def before_tactic(self, tactic: str, heartbeats: bool = False) -> bool:
        """Crash or stall as configured, before a tactic request is answered; True when a
        stall was cut short by Lean's heartbeat limit (``heartbeats``: a REPL proof step)."""
        self.refresh()
        norm = model.normalise_tactic(tactic)
        self.tactics_seen += 1
        draw = self._faults.random() if self.crash_prob or self.slow_prob else 1.0
        crash = (
            (self.crash_after is not None and self.tactics_seen > self.crash_after)
            or (bool(self.crash_tactic) and norm == self.crash_tactic)
            or draw < self.crash_prob
        )
        if crash and self.crash_once:
            if os.path.exists(self.crash_once):
                crash = False
            else:
                Path(self.crash_once).write_text("crashed\n")
        if crash:
            sys.stdout.flush()
            if self.crash_exit_code < 0:
                os.kill(os.getpid(), -self.crash_exit_code)
            os._exit(self.crash_exit_code)
        drawn_slow = not self.slow_prob or self.crash_prob <= draw < self.crash_prob + self.slow_prob
        slow = drawn_slow and not costs.selects_slow()  # else costs.pay_tactic decides
        if self.tactic_delay_s > 0 and (not self.slow_tactic or norm == self.slow_tactic) and slow:
            return costs.spend(self.tactic_delay_s, heartbeats)
        return False


def log_invocation(tool: str, args: list[str]) -> None:
    path = os.environ.get("LEAN_STANDIN_LOG")
    if not path:
        return
    line = json.dumps({"tool": tool, "argv": [tool, *args], "cwd": os.getcwd(), "pid": os.getpid()}, ensure_ascii=False)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode("utf-8"))
    finally:
        os.close(fd)


def elan_resolves_toolchain() -> bool:
    """elan's check: a ``lean-toolchain`` file here or above, or ``ELAN_TOOLCHAIN``."""
    if os.environ.get("ELAN_TOOLCHAIN") or os.environ.get("LEAN_STANDIN_FROM_LAKE"):
        return True
    if not os.environ.get("LEAN_STANDIN_NO_DEFAULT_TOOLCHAIN"):
        return True  # a default toolchain is configured
    here = Path.cwd()
    return any((d / "lean-toolchain").is_file() for d in (here, *here.parents))


def book() -> model.TraceBook:
    return model.TraceBook.from_paths(os.environ.get("LEAN_STANDIN_TRACES"))


def home() -> Path:
    return Path(os.environ.get("LEAN_STANDIN_HOME") or HERE)


# -- lake ------------------------------------------------------------------------------------------


def lake(args: list[str]) -> int:
    if not args or args[0] in ("-h", "--help", "help"):
        print("Lake version 5.0.0 (stand-in)\n\nUSAGE:\n  lake [OPTIONS] <COMMAND>")
        return 0
    command, rest = args[0], args[1:]
    if command in ("--version", "-V", "version"):
        print(f"Lake version 5.0.0-src+{LEAN_COMMIT[:7]} (Lean version {LEAN_VERSION})")
        return 0
    if command == "env":
        if not rest:
            print(f"LEAN_SYSROOT={home() / 'toolchain'}\nLAKE_HOME={home() / 'toolchain'}")
            return 0
        os.environ["LEAN_STANDIN_FROM_LAKE"] = "1"
        os.environ.setdefault("LEAN_SYSROOT", str(home() / "toolchain"))
        try:
            os.execvp(rest[0], rest)
        except OSError as exc:
            print(f"error: failed to execute '{rest[0]}': {exc}", file=sys.stderr)
            return 1
    if command == "build":
        return lake_build(rest)
    if command == "exe":
        if rest[:2] == ["cache", "get"] or rest[:1] == ["cache"]:
            if "mathlib" in lakefile_text().lower():
                print("No files to download (the Lean stand-in needs no Mathlib build)")
                return 0
            print("error: unknown executable cache", file=sys.stderr)
            return 1
        print(f"error: unknown executable {rest[0] if rest else ''}", file=sys.stderr)
        return 1
    if command == "update":
        return 0
    if command == "clean":
        build = Path(".lake/build")
        if build.exists():
            import shutil

            shutil.rmtree(build)
        return 0
    print(f"error: unknown command '{command}'", file=sys.stderr)
    return 1


def lakefile_text() -> str:
    for name in ("lakefile.lean", "lakefile.toml"):
        if Path(name).is_file():
            return Path(name).read_text(encoding="utf-8")
    return ""


def package_modules(root: Path) -> dict[str, Path]:
    """Every ``.lean`` file of the package (not the lakefile, not under ``.lake``)."""
    modules = {}
    for path in sorted(root.rglob("*.lean")):
        relative = path.relative_to(root)
        if relative.parts[0].startswith(".") or relative.name == "lakefile.lean":
            continue
        modules[model.module_name(relative)] = relative
    return modules


def lake_build(targets: list[str]) -> int:
    root = Path.cwd()
    if not lakefile_text():
        print("error: no such file or directory (error code: 2)\n  file: ./lakefile.lean", file=sys.stderr)
        return 1
    modules = package_modules(root)
    if targets:
        wanted = {}
        for target in targets:
            target = target.lstrip("+@").split(":")[0]
            found = {m: p for m, p in modules.items() if m == target or m.startswith(target + ".")}
            if not found:
                print(f"error: unknown target `{target}`", file=sys.stderr)
                return 1
            wanted.update(found)
        modules = wanted
    traces = book()
    failed = False
    for k, (module, relative) in enumerate(modules.items(), 1):
        source = model.read_source(relative.read_text(encoding="utf-8"))
        result = model.check_source(source, traces)
        # Lake's log: `severity: ././././FILE:LINE:COL: text` under the module's line
        lines = []
        for message in result.messages:
            line, column = source.position(message.start)
            lines.append(f"{message.severity}: ././././{relative}:{line}:{column}: {message.data}")
        if result.has_errors:
            failed = True
            print(f"✖ [{k}/{len(modules)}] Building {module}", *lines, sep="\n")
            continue
        olean = root / ".lake/build/lib/lean" / relative.with_suffix(".olean")
        olean.parent.mkdir(parents=True, exist_ok=True)
        olean.write_text(f"Lean stand-in: {module} was checked, not compiled\n", encoding="utf-8")
        olean.with_suffix(".ilean").write_text("{}\n", encoding="utf-8")
        print(f"{'⚠' if lines else '✔'} [{k}/{len(modules)}] Built {module}", *lines, sep="\n")
    if failed:
        print("error: build failed")
        return 1
    print("Build completed successfully.")
    return 0


# -- lean --------------------------------------------------------------------------------------------


def lean(args: list[str]) -> int:
    files, run = [], None
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("--version", "-v"):
            print(f"Lean (version {LEAN_VERSION}, x86_64-unknown-linux-gnu, commit {LEAN_COMMIT}, Release)")
            return 0
        if arg == "--print-prefix":
            prefix = home() / "toolchain"
            prefix.mkdir(parents=True, exist_ok=True)
            print(prefix)
            return 0
        if arg == "--githash":
            print(LEAN_COMMIT)
            return 0
        if arg == "--run":
            run = args[i + 1 : i + 2]
            files = args[i + 2 :]
            break
        if arg in ("--threads", "-j", "--memory", "-M", "--timeout", "-T", "-o", "-i", "--root", "-D"):
            i += 2  # an option with a separate value (memory and threads are honoured by ignoring them)
            continue
        if arg.startswith("-"):
            i += 1
            continue
        files.append(arg)
        i += 1
    if run is not None:
        if not run or Path(run[0]).name != "ExtractData.lean":
            print(
                f"the Lean stand-in cannot run {run[0] if run else 'nothing'}; it serves LeanDojo's ExtractData.lean only",
                file=sys.stderr,
            )
            return 1
        return extract_data(files)
    if len(files) != 1:
        print("the Lean stand-in checks exactly one file: lean [--threads=N] [--memory=M] FILE", file=sys.stderr)
        return 1
    return lean_file(files[0])


def format_message(file_name: str, source: model.Source, message: model.Message) -> str:
    if message.severity == "info":
        return message.data
    line, column = source.position(message.start)
    return f"{file_name}:{line}:{column}: {message.severity}: {message.data}"


def import_errors(source: model.Source, root: Path) -> list[model.Message]:
    errors = []
    for command in source.commands:
        if command.kind != "import" or not command.argument:
            continue
        module = command.argument
        local = Path(*module.split(".")).with_suffix(".lean")
        span = command.argument_span or command.span
        if (root / local).exists():
            olean = Path(".lake/build/lib/lean") / local.with_suffix(".olean")
            if not (root / olean).exists():
                errors.append(
                    model.Message(
                        "error", span.start, span.end, f"object file ./{olean} of module {module} does not exist"
                    )
                )
        elif module.split(".")[0] not in EXTERNAL_PACKAGES and not any(root.glob(f".lake/packages/*/{local}")):
            errors.append(
                model.Message("error", span.start, span.end, f"unknown module prefix '{module.split('.')[0]}'")
            )
    return errors


def lean_file(file_name: str) -> int:
    try:
        text = Path(file_name).read_text(encoding="utf-8")
    except OSError as exc:
        print(f"file not found: {file_name} ({exc.strerror})", file=sys.stderr)
        return 1
    source = model.read_source(text)
    errors = import_errors(source, Path.cwd())
    for message in errors:
        print(format_message(file_name, source, message), flush=True)
    if errors:
        return 1
    if any(c.keyword_span and source.slice(c.keyword_span) == "#lean_dojo_repl" for c in source.commands):
        print(f"{file_name}:1:0: error: the Lean stand-in does not serve LeanDojo's command REPL (#lean_dojo_repl)")
        return 1
    traces = book()
    Knobs()  # reads the cost knobs
    if any(c.kind == "import" for c in source.commands):
        costs.pay_import()
    for declaration in source.declarations():
        if declaration.tactics and model.normalise_tactic(declaration.tactics[0].text) == "lean_dojo_repl":
            return dojo_repl(file_name, source, declaration, traces)
    result = model.check_source(source, traces)
    costs.pay_command(
        len(result.declarations), sum(len(d.tactic_states) for d in result.declarations), "#print axioms" in text
    )
    for message in result.messages:
        print(format_message(file_name, source, message), flush=True)
    return 1 if result.has_errors else 0


def dojo_repl(file_name: str, source: model.Source, declaration: model.Declaration, traces: model.TraceBook) -> int:
    """LeanDojo's ``lean_dojo_repl`` tactic (``Lean4Repl.lean``, TacticRepl): see module docs."""
    earlier = model.check_source(source, traces, stop_at=declaration)
    costs.pay_command(len(earlier.declarations), sum(len(d.tactic_states) for d in earlier.declarations), False)
    for message in earlier.messages:  # Lean reports each command as it finishes
        print(format_message(file_name, source, message), flush=True)
    signature = source.slice(declaration.signature_span)
    goal = traces.initial_goal(declaration.full_name or declaration.name, signature)
    repl_span = declaration.tactics[0].span
    line, column = source.position(repl_span.start)
    if goal is None:
        name = declaration.full_name or declaration.name
        print(f"{file_name}:{line}:{column}: error: the Lean stand-in has no recorded goal for '{name}'", flush=True)
        return 1
    knobs = Knobs()
    knobs.before_first_answer()
    saved: list[model.ProofState] = [model.ProofState.of(goal)]

    def respond(sid: int | None = None, tactic_state: str | None = None, error: str | None = None) -> None:
        payload = json.dumps(
            {"error": error, "sid": sid, "tacticState": tactic_state}, ensure_ascii=False, sort_keys=True
        )
        sys.stdout.write(f"REPL> {payload}\n")
        sys.stdout.flush()

    def fatal(text: str) -> int:
        print(f"{file_name}:{line}:{column}: error: {text}", flush=True)
        return 1

    respond(0, saved[0].pp)
    while True:
        raw = sys.stdin.readline()
        request_line = raw.strip()
        if request_line == "exit":
            return 0
        try:
            request = json.loads(request_line)
            sid, tactic = int(request["sid"]), str(request["cmd"])
        except (ValueError, KeyError, TypeError) as exc:
            return fatal(f"[fatal] failed to parse JSON {exc}")
        knobs.before_tactic(tactic)
        if not 0 <= sid < len(saved):
            return fatal(f"[fatal] unknown tsid: {sid}")
        harm = hostile.act(knobs.hostile, tactic, saved[sid].pp)
        if harm is not None:
            respond(error=harm)
            continue
        costs.pay_tactic(saved[sid].pp, tactic, knobs.tactic_delay_s)
        outcome = model.run_tactic(saved[sid], tactic, traces)
        if outcome.error is not None:
            respond(error=f"<stdin>:1:1: {outcome.error}" if outcome.syntax else outcome.error)
            continue
        assert outcome.state is not None
        if not outcome.state.goals:
            verdict = model.dojo_verdict(outcome)
            if verdict is not None:
                respond(error=verdict)
                continue
        saved.append(outcome.state)
        respond(len(saved) - 1, outcome.state.pp)


# -- LeanDojo's ExtractData.lean ----------------------------------------------------------------------


def build_path(relative: Path, sub_dir: str, extension: str) -> Path:
    """ExtractData's ``toBuildDir``: where a source file's build products go."""
    parts = relative.parts
    if parts[:2] == (".lake", "packages") and len(parts) > 3:
        package = Path(*parts[:3])
        inside = Path(*parts[3:])
        return package / ".lake/build" / sub_dir / inside.with_suffix(extension)
    return Path(".lake/build") / sub_dir / relative.with_suffix(extension)


def extract_data(args: list[str]) -> int:
    root = Path.cwd()
    traces = book()
    if len(args) == 1 and args[0] != "noDeps":
        return extract_file(root, Path(args[0]).resolve(), traces)
    if len(args) > 1:
        print("uncaught exception: Invalid arguments", file=sys.stderr)
        return 1
    no_deps = args == ["noDeps"]
    print(f"Extracting data at {root}", flush=True)
    for path in sorted(root.rglob("*.lean")):
        relative = path.relative_to(root)
        if no_deps and relative.parts[:2] == (".lake", "packages"):
            continue
        if not (root / build_path(relative, "lib/lean", ".olean")).exists():
            continue
        if extract_file(root, path, traces) != 0:
            print(f"WARNING: Failed to process {path}")
    return 0


def extract_file(root: Path, path: Path, traces: model.TraceBook) -> int:
    print(path, flush=True)
    relative = path.relative_to(root)
    source = model.read_source(path.read_text(encoding="utf-8"))
    document, dep_paths = model.ast_json(source, traces, root)
    json_path = root / build_path(relative, "ir", ".ast.json")
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(document, ensure_ascii=False, indent=2), encoding="utf-8")
    (root / build_path(relative, "ir", ".dep_paths")).write_text(dep_paths, encoding="utf-8")
    return 0


# -- the Lean REPL (leanprover-community/repl, as lean-interact runs it) ------------------------------


class Repl:
    """The REPL's state: environments (what each knows for ``#print axioms``) and proof states."""

    def __init__(self) -> None:
        self.traces = book()
        self.knobs = Knobs()
        self.envs: list[dict[str, list[str]]] = []
        self.proof_states: list[model.ProofState] = []

    def record(self, state: model.ProofState) -> int:
        self.proof_states.append(state)
        return len(self.proof_states) - 1

    def answer(self, query: dict) -> dict:
        if "proofState" in query and "tactic" in query:
            return self.proof_step(query)
        if "env" in query and "pickleTo" in query:
            if not 0 <= query["env"] < len(self.envs):
                return {"message": "Unknown environment."}
            Path(query["pickleTo"]).write_text(json.dumps({"env": self.envs[query["env"]]}), encoding="utf-8")
            return {"env": query["env"]}
        if "unpickleEnvFrom" in query:
            self.envs.append(json.loads(Path(query["unpickleEnvFrom"]).read_text(encoding="utf-8"))["env"])
            return {"env": len(self.envs) - 1}
        if "proofState" in query and "pickleTo" in query:
            if not 0 <= query["proofState"] < len(self.proof_states):
                return {"message": "Unknown proof State."}
            state = self.proof_states[query["proofState"]]
            Path(query["pickleTo"]).write_text(
                json.dumps({"goals": state.goals, "uses_sorry": state.uses_sorry}), encoding="utf-8"
            )
            return self.state_response(state)
        if "unpickleProofStateFrom" in query:
            data = json.loads(Path(query["unpickleProofStateFrom"]).read_text(encoding="utf-8"))
            return self.state_response(model.ProofState(tuple(data["goals"]), data["uses_sorry"]))
        if "cmd" in query:
            return self.command(str(query["cmd"]), query.get("env"), bool(query.get("rootGoals")))
        if "path" in query:
            try:
                text = Path(query["path"]).read_text(encoding="utf-8")
            except OSError as exc:
                return {
                    "message": f"no such file or directory (error code: 2, {exc.strerror})\n  file: {query['path']}"
                }
            return self.command(text, query.get("env"), bool(query.get("rootGoals")))
        raise ValueError("Could not parse as a valid JSON command")

    def state_response(self, state: model.ProofState) -> dict:
        state_id = self.record(state)
        return {
            "proofState": state_id,
            "goals": list(state.goals),
            "proofStatus": model.finished_status(model.StepOutcome(state)),
        }

    def command(self, text: str, env: int | None, root_goals: bool) -> dict:
        if env is not None and not 0 <= env < len(self.envs):
            return {"message": "Unknown environment."}
        self.knobs.refresh()
        source = model.read_source(text)
        messages: list[model.Message] = []
        if env is None:
            messages.extend(import_errors(source, Path.cwd()))
        else:
            for command in source.commands:
                if command.kind == "import":
                    messages.append(
                        model.Message(
                            "error",
                            command.span.start,
                            command.span.end,
                            "invalid 'import' command, it must be used in the beginning of the file",
                        )
                    )
        known = dict(self.envs[env]) if env is not None else {}
        if env is None and any(c.kind == "import" for c in source.commands):
            costs.pay_import()  # the REPL keeps no import cache: each command without env imports again
        result = model.check_source(source, self.traces, known_axioms=known)
        costs.pay_command(
            len(result.declarations), sum(len(d.tactic_states) for d in result.declarations), "#print axioms" in text
        )
        messages.extend(result.messages)
        sorries = []
        for sorry in result.sorries:
            sorries.append(
                {
                    "proofState": self.record(sorry.state),
                    "pos": self.pos(source, sorry.start),
                    "goal": sorry.goal,
                    "endPos": self.pos(source, sorry.end),
                }
            )
        if root_goals:
            for checked in result.declarations:
                if checked.initial is not None:
                    where = self.pos(source, checked.declaration.keyword_span.start)
                    sorries.append(
                        {
                            "proofState": self.record(checked.initial),
                            "pos": where,
                            "goal": checked.initial.pp,
                            "endPos": where,
                        }
                    )
        self.envs.append(result.axioms)
        response: dict = {"env": len(self.envs) - 1}
        if messages:
            response["messages"] = [
                {
                    "severity": m.severity,
                    "pos": self.pos(source, m.start),
                    "endPos": self.pos(source, m.end),
                    "data": m.data,
                }
                for m in messages
            ]
        if sorries:
            response["sorries"] = sorries
        return response

    @staticmethod
    def pos(source: model.Source, offset: int) -> dict:
        line, column = source.position(offset)
        return {"line": line, "column": column}

    def proof_step(self, query: dict) -> dict:
        index = query["proofState"]
        if not isinstance(index, int) or not 0 <= index < len(self.proof_states):
            return {"message": "Unknown proof state."}
        tactic = str(query["tactic"])
        # The REPL runs a proof step under Lean's heartbeat limit: past it Lean throws, the
        # REPL answers the error and goes on (costs.py, heartbeat_s).
        if self.knobs.before_tactic(tactic, heartbeats=True):
            return {"message": f"Lean error:\n{costs.HEARTBEAT_ERROR}"}
        harm = hostile.act(self.knobs.hostile, tactic, self.proof_states[index].pp)
        if harm is not None:
            return {"message": f"Lean error:\n{harm}"}
        if costs.pay_tactic(self.proof_states[index].pp, tactic, self.knobs.tactic_delay_s, heartbeats=True):
            return {"message": f"Lean error:\n{costs.HEARTBEAT_ERROR}"}
        outcome = model.run_tactic(self.proof_states[index], tactic, self.traces)
        if outcome.state is None:
            prefix = "<input>:1:1: " if outcome.syntax else ""
            return {"message": f"Lean error:\n{prefix}{outcome.error}"}
        sorries = [
            {"proofState": self.record(model.ProofState((goal,))), "goal": goal} for goal in outcome.sorried_goals
        ]
        response: dict = {"proofState": self.record(outcome.state), "goals": list(outcome.state.goals)}
        if outcome.error is not None:
            nowhere = {"line": 0, "column": 0}
            response["messages"] = [{"severity": "error", "pos": nowhere, "endPos": nowhere, "data": outcome.error}]
        if sorries:
            response["sorries"] = sorries
        response["proofStatus"] = model.finished_status(outcome)
        return response


def read_query() -> str | None:
    """The REPL's ``getLines``: lines up to a blank one; None at end of input."""
    lines = []
    while True:
        line = sys.stdin.readline()
        if not line:
            return "".join(lines) if lines else None
        if not line.strip():
            if lines:
                return "".join(lines)
            continue
        lines.append(line.rstrip())


def repl(_args: list[str]) -> int:
    server = Repl()
    while True:
        query = read_query()
        if query is None:
            return 0
        if query.startswith("#") or query.startswith("--"):
            continue
        server.knobs.before_first_answer()
        try:
            parsed = json.loads(query)
            if not isinstance(parsed, dict):
                raise ValueError("expected a JSON object")
            answer = server.answer(parsed)
        except (ValueError, KeyError, TypeError) as exc:
            print(
                f'uncaught exception: {{"message": "Could not parse as a valid JSON command:\\n{exc}"}}',
                file=sys.stderr,
            )
            return 1
        sys.stdout.write(json.dumps(answer, ensure_ascii=False) + "\n\n")
        sys.stdout.flush()


# -- entry point ------------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[1] not in ("lake", "lean", "repl"):
        print("usage: toolchain.py lake|lean|repl ARGS...", file=sys.stderr)
        return 2
    tool, args = argv[1], argv[2:]
    log_invocation(tool, args)
    if tool in ("lake", "lean") and not elan_resolves_toolchain():
        print(ELAN_NO_DEFAULT, file=sys.stderr)
        return 1
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    return {"lake": lake, "lean": lean, "repl": repl}[tool](args)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
