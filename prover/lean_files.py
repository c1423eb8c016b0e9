"""Lean files as theorem sets: a file's `sorry`s, listed by the Lean REPL, as ``Theorem``s.

``prover fill`` and ``prove-split --lean-file`` read a file (``LeanFile``: the leading
``import`` lines are the header, the rest the body the REPL elaborates on top), ask the REPL
for its `sorry`s (``find_holes``; a file Lean reports an error in is refused, in one
sentence), and make each a ``Theorem`` that the REPL backend starts from (``hole_theorem``;
see ``prover.envs.filecheck``). The Lake project is the one that holds the file unless
``--lean-project`` says otherwise (``with_file_project``).

    holes = find_holes(LeanFile.read("Foo.lean"), env.elaborate)
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from search import EnvInitError, Theorem

from prover.envs.filecheck import messages_of, sorries_of
from prover.errors import ProverError
from prover.holes import Hole, make_holes, split_header
from prover.registry import backend, envs_with


@dataclass(frozen=True)
class LeanFile:
    """A Lean file split as the REPL elaborates it."""

    path: Path
    text: str
    header: str
    body: str

    @property
    def header_lines(self) -> int:
        return self.header.count("\n")

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    @classmethod
    def read(cls, path: str | Path) -> LeanFile:
        path = Path(path)
        if path.suffix != ".lean":
            raise ProverError(f"{path} is not a Lean file (its name must end in .lean)")
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ProverError(f"{path} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ProverError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
        header, body = split_header(text)
        return cls(path.resolve(), text, header, body)


def project_of(path: str | Path) -> Path:
    """The Lake project that holds ``path``: the nearest directory above it with a
    ``lean-toolchain`` file; a ProverError when there is none."""
    for directory in Path(path).resolve().parents:
        if (directory / "lean-toolchain").is_file():
            return directory
    raise ProverError(f"{path} is not inside a Lake project (no lean-toolchain file above it); pass --lean-project DIR")


def find_holes(lean_file: LeanFile, elaborate_file: Callable[[str, str], Any]) -> list[Hole]:
    """The file's holes, in file coordinates; a ProverError when Lean reports an error."""
    try:
        response = elaborate_file(lean_file.header, lean_file.body)
    except EnvInitError as exc:
        raise ProverError(f"{lean_file.path} could not be elaborated: {exc}") from None
    errors = [m for m in messages_of(response) if m.severity == "error"]
    if errors:
        first = errors[0]
        line = first.line + lean_file.header_lines
        text = (first.data.splitlines() or [""])[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ProverError(
            f"{lean_file.path} does not elaborate: line {line}: {text}{more}; fix it first, nothing was written"
        )
    shift = lean_file.header_lines
    sorries = [
        (s.line + shift, s.column, s.end_line + shift, s.end_column, s.goal)
        for s in sorries_of(response)
        if s.proof_state is not None
    ]
    return make_holes(lean_file.text, sorries)


def hole_theorem(lean_file: LeanFile, hole: Hole) -> Theorem:
    """The theorem a search of ``hole`` starts from (positions relative to the body)."""
    return Theorem(
        hole.name,
        statement=lean_file.body,
        header=lean_file.header,
        file_path=str(lean_file.path),
        full_name=hole.declaration,
        sorry_at=f"{hole.line - lean_file.header_lines}:{hole.column}",
    )


def body_hole(lean_file: LeanFile, hole: Hole) -> Hole:
    """``hole`` in the coordinates of the body."""
    shift = lean_file.header_lines
    return dataclasses.replace(
        hole, line=hole.line - shift, end_line=hole.end_line - shift, decl_line=hole.decl_line - shift
    )


def file_elaborator(env_options: Any) -> tuple[Any, Callable[[str, str], Any]]:
    """A REPL environment for ``env_options`` (a ``ReplConfig``) and its ``elaborate``."""
    from prover.envs.repl import build

    env = build(env_options)
    return env, env.elaborate


def require_file_holes(env_name: str, what: str) -> None:
    """Refuse, in one sentence, an environment that cannot list a file's holes (the
    registry's ``lean_files`` capability)."""
    if not backend("environment", env_name).lean_files:
        able = " or ".join(f"--env {name}" for name in envs_with("lean_files"))
        raise ProverError(
            f"{what} needs {able} (it lists a file's `sorry`s with their proof states), not --env {env_name}"
        )


def theorems_from_lean_file(path: str | Path, env_spec: Any) -> list[Theorem]:
    """``prove-split --lean-file``: every hole of the file as a theorem (an environment with
    the ``lean_files`` capability: the Lean REPL)."""
    require_file_holes(env_spec.name, "--lean-file")
    lean_file = LeanFile.read(path)
    env, elaborate_file = file_elaborator(env_spec.options)
    try:
        holes = find_holes(lean_file, elaborate_file)
    finally:
        env.close()
    if not holes:
        raise ProverError(f"{lean_file.path} has no `sorry` to prove")
    return [hole_theorem(lean_file, hole) for hole in holes]


def with_file_project(config: Any, file: str | Path, project_given: bool) -> Any:
    """``config`` with the Lean project that holds ``file`` unless ``--lean-project`` was given."""
    if project_given or not backend("environment", config.env.name).lean_files:
        return config
    project = project_of(file)
    options = dataclasses.replace(config.env.options, lean_project=str(project))
    return dataclasses.replace(config, env=dataclasses.replace(config.env, options=options))
