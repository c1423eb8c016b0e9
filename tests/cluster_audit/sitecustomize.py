"""A write audit for the cluster tests: which process writes where.

Python imports ``sitecustomize`` at start-up from the path, so every Python process that
has this directory on ``PYTHONPATH`` (the test cluster's nodes pass it to their Ray
workers, and the tests to the driver) installs the audit hook below. With
``PROVER_AUDIT_WATCH`` set to a directory, each file under it that the process opens for
writing, renames, removes or creates is noted as a line ``pid<TAB>event<TAB>path`` in
``$PROVER_AUDIT_LOG``, so a test can check that only the driver wrote a run directory.
Each process also notes that it runs the audit: ``pid<TAB>start<TAB>its script``.
"""

import os
import sys
import threading

_WATCH = os.environ.get("PROVER_AUDIT_WATCH")
_LOG = os.environ.get("PROVER_AUDIT_LOG")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_inside = threading.local()


def _watched(path) -> bool:
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    return isinstance(path, str) and os.path.abspath(path).startswith(_WATCH)


def _audit(event, args):
    if getattr(_inside, "busy", False):
        return
    if event == "open":
        path, mode, flags = args
        writing = any(c in mode for c in "wax+") if isinstance(mode, str) else bool((flags or 0) & _WRITE_FLAGS)
        paths = [path] if writing else []
    elif event in ("os.rename", "os.replace"):
        paths = [args[0], args[1]]
    elif event in ("os.remove", "os.rmdir", "os.mkdir", "os.truncate"):
        paths = [args[0]]
    else:
        return
    watched = [p for p in paths if _watched(p)]
    if not watched:
        return
    _inside.busy = True
    try:
        with open(_LOG, "a", encoding="utf-8") as log:
            for path in watched:
                log.write(f"{os.getpid()}\t{event}\t{os.fsdecode(path)}\n")
    finally:
        _inside.busy = False


if _WATCH and _LOG:
    _WATCH = os.path.abspath(_WATCH)
    with open(_LOG, "a", encoding="utf-8") as _log:
        _log.write(f"{os.getpid()}\tstart\t{sys.argv[0] if sys.argv else ''}\n")
    sys.addaudithook(_audit)
