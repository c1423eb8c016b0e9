"""Hostile acts for the stand-in Lean: a "tactic" that really does harm, for the sandbox tests.

The knob ``hostile`` [``LEAN_STANDIN_HOSTILE``] is a JSON object from tactic text to an act;
when a stand-in process (the REPL, LeanDojo's tactic REPL) is asked for that tactic it
performs the act, then answers the tactic with a Lean error that says what happened
(``hostile act connect: done ...`` or ``hostile act connect: failed: ...``), unless the act
killed it; each result is also appended as a JSON line to ``$LEAN_STANDIN_HOME/hostile.jsonl``
(``results``), which ``install`` leaves writable under the sandbox. Acts:

- ``{"act": "connect", "port": P}``: open a TCP connection to 127.0.0.1:P and send the goal;
- ``{"act": "write", "path": PATH}``: write a file (meant outside the work directory);
- ``{"act": "spawn", "count": N}``: start N processes that each sleep a few seconds;
- ``{"act": "allocate", "mb": M}``: map M MiB of memory (untouched, so only limits feel it);
- ``{"act": "sleep"}``: sleep for ever (a timeout must end it).

Only the standard library is used, so the stand-in starts as fast as before.
"""

from __future__ import annotations

import json
import mmap
import os
import socket
import time

VARIABLE = "LEAN_STANDIN_HOSTILE"


def _connect(spec: dict, goal: str) -> str:
    payload = f"stolen goal: {goal}\n".encode()
    with socket.create_connection(("127.0.0.1", int(spec["port"])), timeout=5) as connection:
        connection.sendall(payload)
    return f"sent {len(payload)} bytes to 127.0.0.1:{spec['port']}"


def _write(spec: dict, _goal: str) -> str:
    with open(spec["path"], "w", encoding="utf-8") as out:
        out.write("written by a tactic\n")
    return f"wrote {spec['path']}"


def _spawn(spec: dict, _goal: str) -> str:
    started = 0
    try:
        for _ in range(int(spec["count"])):
            if os.fork() == 0:
                time.sleep(float(spec.get("sleep_s", 3)))
                os._exit(0)
            started += 1
    except OSError as exc:
        raise OSError(f"started {started} processes, then: {exc}") from None
    return f"started {started} processes"


def _allocate(spec: dict, _goal: str) -> str:
    # Anonymous memory, mapped but not touched: RLIMIT_AS counts it, the machine does not feel it.
    block = mmap.mmap(-1, int(spec["mb"]) * 2**20)
    size = len(block)
    block.close()
    return f"allocated {size // 2**20} MiB"


def _sleep(_spec: dict, _goal: str) -> str:
    while True:
        time.sleep(3600)


ACTS = {"connect": _connect, "write": _write, "spawn": _spawn, "allocate": _allocate, "sleep": _sleep}


def act(acts: str, tactic: str, goal: str) -> str | None:
    """Perform the act ``acts`` (the knob's JSON) names for ``tactic``; the error to answer, or None."""
    if not acts:
        return None
    spec = json.loads(acts).get(" ".join(tactic.split()))
    if spec is None:
        return None
    try:
        done, text = True, ACTS[spec["act"]](spec, goal)
    except (OSError, MemoryError) as exc:
        done, text = False, f"{type(exc).__name__}: {exc}"
    report = {"tactic": tactic, "act": spec["act"], "done": done, "text": text, "pid": os.getpid()}
    home = os.environ.get("LEAN_STANDIN_HOME")
    if home:
        with open(os.path.join(home, "hostile.jsonl"), "a", encoding="utf-8") as out:
            out.write(json.dumps(report) + "\n")
    return f"hostile act {spec['act']}: {'done' if done else 'failed'}: {text}"


def results(home: str | os.PathLike) -> list[dict]:
    """The acts performed so far by the stand-in installed at ``home`` (its ``LEAN_STANDIN_HOME``)."""
    path = os.path.join(home, "hostile.jsonl")
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]
