"""What Lean costs, for the stand-in: import time and memory, elaboration time, tactic time,
timeouts, and death past the address-space limit.

A real Lean process pays for ``import Mathlib`` (seconds, gigabytes) every time a command
without an environment runs its header (the Lean REPL keeps no import cache between such
commands; ``lean FILE`` imports once), then for every command and tactic it elaborates,
and its resident memory only grows. The stand-in answers in milliseconds from records, so
without this module no test or benchmark could see what a design costs in Lean time. The
knobs (``install`` names in brackets; all re-read before every answer, so ``set_knobs``
works on running processes) are:

- ``LEAN_STANDIN_IMPORT_DELAY_S`` [import_delay_s]: seconds per import of a header (a
  command without ``env`` that has ``import`` lines, or ``lean FILE``); commands on an
  environment (``"env": H``) share its imports and pay nothing more;
- ``LEAN_STANDIN_IMPORT_MEMORY_MB`` [import_memory_mb]: memory allocated and touched per
  import (resident, so ``psutil`` sees it through ``/proc``), held until the process ends;
- ``LEAN_STANDIN_COMMAND_DELAY_S`` [command_delay_s]: seconds per command elaborated
  (each declaration of a REPL command or a file, besides its tactics);
- ``LEAN_STANDIN_COMMAND_MEMORY_MB`` [command_memory_mb]: memory kept per command and per
  proof step (a proof state stays valid, so its memory stays, until the process dies);
- ``LEAN_STANDIN_TACTIC_COST_S`` [tactic_cost_s]: seconds per tactic, in a proof step or
  inside a command's proofs;
- ``LEAN_STANDIN_SLOW_FRACTION`` [slow_fraction]: the fraction of (goal, tactic) pairs that
  take ``tactic_delay_s`` instead (to run past a tactic timeout); chosen by a hash, so the
  same tactic at the same goal is slow in every process and every run;
- ``LEAN_STANDIN_HEARTBEAT_S`` [heartbeat_s]: seconds after which Lean's heartbeat limit
  stops a slow proof step of the Lean REPL (0, the default: never). Lean counts
  heartbeats (small allocations) and throws ``(deterministic) timeout ..., maximum number
  of heartbeats (200000) has been reached`` when a step passes ``maxHeartbeats``; the REPL
  answers that as an error and lives on. The pinned REPL (lean-interact's build for Lean
  v4.20) runs every proof step under Lean's default limit, 200000, whatever a ``set_option
  maxHeartbeats`` in the command says (leanprover-community/repl#69), so this knob is the
  time a slow tactic takes to reach that limit. LeanDojo's REPL sets ``maxHeartbeats 0``,
  so its tactics are never stopped by it (``pay_tactic(..., heartbeats=False)``).

Past the address-space limit (``RLIMIT_AS``, which lean-interact sets from
``memory_hard_limit_mb``) an allocation fails and the process dies as Lean does:
``INTERNAL PANIC: out of memory`` on stderr and exit status 1, no answer.

Each cost paid is appended as one JSON line to ``$LEAN_STANDIN_HOME/costs.jsonl``
(``{"pid", "kind": import|command|check|tactic, "seconds", "slow", "stopped"}``; ``check``
is a command with ``#print axioms``; ``stopped``: Lean's heartbeat limit ended the tactic;
a slow tactic is logged before it sleeps), which
``read_costs`` reads back: the benchmark's split of Lean's time comes from there.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

KNOBS = {
    "import_delay_s": "LEAN_STANDIN_IMPORT_DELAY_S",
    "import_memory_mb": "LEAN_STANDIN_IMPORT_MEMORY_MB",
    "command_delay_s": "LEAN_STANDIN_COMMAND_DELAY_S",
    "command_memory_mb": "LEAN_STANDIN_COMMAND_MEMORY_MB",
    "tactic_cost_s": "LEAN_STANDIN_TACTIC_COST_S",
    "slow_fraction": "LEAN_STANDIN_SLOW_FRACTION",
    "heartbeat_s": "LEAN_STANDIN_HEARTBEAT_S",
}
# What Lean v4.20 says when a step passes maxHeartbeats (the REPL prefixes "Lean error:\n").
HEARTBEAT_ERROR = (
    "(deterministic) timeout at `whnf`, maximum number of heartbeats (200000) has been reached\n"
    "Use `set_option maxHeartbeats <num>` to set the limit.\n"
    "Additional diagnostic information may be available using the `set_option diagnostics true` command."
)
PAGE = 4096

_values: dict[str, float] = {name: 0.0 for name in KNOBS}
_held: list[bytearray] = []  # the memory this process keeps, as Lean keeps its environments


def configure(values: dict[str, str]) -> None:
    """Take the knobs' current values (``Knobs.refresh`` passes every knob's text)."""
    for name in KNOBS:
        text = values.get(name) or ""
        _values[name] = float(text) if text.strip() else 0.0


def _log(kind: str, seconds: float, slow: bool = False, stopped: bool = False) -> None:
    home = os.environ.get("LEAN_STANDIN_HOME")
    if not home:
        return
    record = {"pid": os.getpid(), "kind": kind, "seconds": seconds, "slow": slow, "stopped": stopped}
    line = json.dumps(record) + "\n"
    fd = os.open(Path(home) / "costs.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def allocate(megabytes: float) -> None:
    """Allocate and touch ``megabytes`` (kept for the process's life); die as Lean does
    when the address-space limit forbids it."""
    size = int(megabytes * 1024 * 1024)
    if size <= 0:
        return
    try:
        block = bytearray(size)
        block[::PAGE] = b"\x01" * len(range(0, size, PAGE))  # touch every page: resident, not just reserved
    except MemoryError:
        _held.clear()
        sys.stderr.write("INTERNAL PANIC: out of memory\n")
        sys.stderr.flush()
        os._exit(1)
    _held.append(block)


def pay_import() -> None:
    """One import of a header: its time and its memory."""
    allocate(_values["import_memory_mb"])
    if _values["import_delay_s"] > 0:
        time.sleep(_values["import_delay_s"])
    _log("import", _values["import_delay_s"])


def pay_command(declarations: int, tactics: int, check: bool) -> None:
    """Elaborating one command (or file part): ``declarations`` declarations with
    ``tactics`` tactics in their proofs; ``check`` marks a command with ``#print axioms``."""
    allocate(_values["command_memory_mb"])
    seconds = _values["command_delay_s"] * max(1, declarations) + _values["tactic_cost_s"] * tactics
    if seconds > 0:
        time.sleep(seconds)
    _log("check" if check else "command", seconds)


def is_slow(goal: str, tactic: str) -> bool:
    """Whether this (goal, tactic) pair is one of the ``slow_fraction`` that run long."""
    fraction = _values["slow_fraction"]
    if fraction <= 0:
        return False
    digest = hashlib.blake2b(f"{goal.strip()}\x1f{' '.join(tactic.split())}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2**64 < fraction


def stops(seconds: float, heartbeats: bool) -> bool:
    """Whether Lean's heartbeat limit ends a step that would run ``seconds`` (``heartbeats``:
    the step runs under a limit, as the REPL's proof steps do)."""
    limit = _values["heartbeat_s"]
    return heartbeats and 0 < limit < seconds


def spend(seconds: float, heartbeats: bool) -> bool:
    """Run a step of ``seconds``, or until the heartbeat limit stops it: True if it did."""
    stopped = stops(seconds, heartbeats)
    if stopped:
        seconds = _values["heartbeat_s"]
    if seconds > 0:
        time.sleep(seconds)
    return stopped


def pay_tactic(goal: str, tactic: str, slow_delay_s: float, heartbeats: bool = False) -> bool:
    """One proof step: its memory, and ``tactic_cost_s`` or, for a slow pair, ``slow_delay_s``
    (cut short by the heartbeat limit when ``heartbeats``): True when the limit stopped it."""
    allocate(_values["command_memory_mb"])
    slow = is_slow(goal, tactic)
    seconds = slow_delay_s if slow else _values["tactic_cost_s"]
    stopped = stops(seconds, heartbeats)
    _log("tactic", _values["heartbeat_s"] if stopped else seconds, slow, stopped)
    return spend(seconds, heartbeats)


def selects_slow() -> bool:
    """Whether ``slow_fraction`` (not the older knobs) decides which tactics are slow."""
    return _values["slow_fraction"] > 0


def read_costs(env: dict[str, str]) -> list[dict]:
    """Every cost the stand-in processes of ``install``'s ``env`` paid, in order."""
    path = Path(env["LEAN_STANDIN_HOME"]) / "costs.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
