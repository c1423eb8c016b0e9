"""A watchdog that takes a local Ray down with the driver that started it.

Ray started by ``ray.init()`` in the driver is meant to share its fate, yet after a
``kill -9`` of the driver some of its helper processes (the dashboard and runtime-env
agents, idle workers) can stay alive and ignore SIGTERM. ``watch(driver_pid,
session_dir)`` starts a small detached process that waits for the driver to exit and
then kills (SIGKILL) every process whose command line names that Ray session's
directory, so nothing outlives the driver by more than a few seconds. Other Ray
sessions on the machine are left alone.

    python -m prover.run.watchdog DRIVER_PID SESSION_DIR
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

POLL_S = 0.5


def watch(driver_pid: int, session_dir: str) -> subprocess.Popen:
    """Start the watchdog for ``driver_pid``'s Ray session (detached: it outlives a killed driver)."""
    return subprocess.Popen(
        [sys.executable, "-m", "prover.run.watchdog", str(driver_pid), session_dir],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )


def session_processes(session_dir: str) -> list:
    """The processes whose command line names ``session_dir`` (this watchdog excluded)."""
    import psutil  # installed with Ray

    name = os.path.basename(session_dir.rstrip("/"))
    found = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        if process.info["pid"] == os.getpid():
            continue
        command = " ".join(process.info["cmdline"] or ())
        if name and name in command and "prover.run.watchdog" not in command:
            found.append(process)
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main(argv: list[str]) -> None:
    driver_pid, session_dir = int(argv[0]), argv[1]
    while _alive(driver_pid):
        time.sleep(POLL_S)
    time.sleep(2 * POLL_S)  # a driver that shut Ray down itself is given the moment it needs
    for process in session_processes(session_dir):
        try:
            process.kill()
        except Exception:  # gone already, or not ours to kill
            pass


if __name__ == "__main__":
    main(sys.argv[1:])
