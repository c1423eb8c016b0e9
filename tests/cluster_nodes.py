"""A Ray cluster of several nodes on this machine, in a process of its own (tests and benchmarks).

``ray.cluster_utils.Cluster`` starts a head and worker nodes, a raylet each, on one
machine. It cannot share a process with a Ray already initialised there (the test
session's ``ray_local``), and a driver joins it through ``--ray-address`` like any
cluster, so the nodes live in a helper process that ``ClusterNodes`` runs and talks to:

    with ClusterNodes(head={"num_cpus": 1}) as cluster:
        gpu_node = cluster.add_node(num_cpus=1, num_gpus=1)
        lean_node = cluster.add_node(num_cpus=2, labels={"prover-role": "lean"})
        subprocess.run(["prover", "prove-split", "--ray-address", cluster.address, ...])
        cluster.remove_node(lean_node)     # as if the machine died: every process on it ends

The helper reads one JSON command per line on stdin and answers one JSON line on stdout:
``{"add": {node arguments}}`` gives ``{"node_id": ...}``, ``{"remove": node_id}`` gives
``{}``. Nodes declare their resources (a ``GPU`` count needs no GPU: Ray then sets
``CUDA_VISIBLE_DEVICES`` for the actors that reserve one, which is all that placement
needs). Node deaths are noticed within about 1.5 s (fast health checks), where a real
cluster takes tens of seconds by default.

Two things keep the helper from disturbing other Ray users of this machine: its nodes
keep their files in a temporary directory of their own, and it does not record its
address in ``/tmp/ray/ray_current_cluster`` (where ``Cluster`` would, so that a
``ray.init()`` anywhere on the machine would join this cluster).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

# How quickly the head declares a silent node dead: checks every 0.5 s, 3 missed.
FAST_HEALTH_CHECKS = {
    "health_check_initial_delay_ms": 0,
    "health_check_period_ms": 500,
    "health_check_failure_threshold": 3,
}


class ClusterNodes:
    """The helper process and its nodes; ``address`` is the head's, for ``--ray-address``.

    ``env`` adds environment variables to the helper, and so to every process of every
    node (the tests' write audit, for one); ``log`` keeps what Ray prints.
    """

    def __init__(self, head: dict | None = None, env: dict[str, str] | None = None, log: Path | None = None):
        with open(log or os.devnull, "ab") as log_file:  # Ray's own messages, nodes dying included
            self.process = subprocess.Popen(
                [sys.executable, __file__],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log_file,
                text=True,
                env={**{k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}, **(env or {})},
            )
        self.address = self._ask({"head": head or {}})["address"]

    def add_node(self, **node_args: Any) -> str:
        """Start a node (``num_cpus``, ``num_gpus``, ``resources``, ``labels``, ...); its id."""
        return self._ask({"add": node_args})["node_id"]

    def remove_node(self, node_id: str) -> None:
        """Kill the node's raylet and every process on it at once, as a machine dies."""
        self._ask({"remove": node_id})

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()  # the helper shuts the cluster down at end of input
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> "ClusterNodes":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _ask(self, command: dict) -> dict:
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        while True:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError(f"the cluster helper ended (exit code {self.process.wait()})")
            if line.startswith("{"):  # Ray's own lines may come on stdout too
                answer = json.loads(line)
                if "error" in answer:
                    raise RuntimeError(f"the cluster helper could not {command}: {answer['error']}")
                return answer


# ---- the helper process ---------------------------------------------------------------------


def _serve() -> None:
    import logging

    import ray._private.utils
    from ray.cluster_utils import Cluster

    ray._private.utils.write_ray_address = lambda *args, **kwargs: None  # see the module docstring
    logging.getLogger("ray").setLevel(logging.WARNING)
    out = sys.stdout
    sys.stdout = sys.stderr  # only answers on the real stdout
    temp_dir = tempfile.mkdtemp(prefix="rc-", dir="/tmp")  # short: Unix socket paths are < 108 bytes
    cluster = None
    nodes: dict[str, Any] = {}

    def answer(data: dict) -> None:
        out.write(json.dumps(data) + "\n")
        out.flush()

    try:
        for line in sys.stdin:
            command = json.loads(line)
            try:
                if "head" in command:
                    args = {
                        "num_cpus": 1,
                        "include_dashboard": False,
                        "temp_dir": temp_dir,
                        "_system_config": FAST_HEALTH_CHECKS,
                        **command["head"],
                    }
                    cluster = Cluster(initialize_head=True, head_node_args=args)
                    nodes[cluster.head_node.node_id] = cluster.head_node
                    answer({"address": cluster.address, "node_id": cluster.head_node.node_id})
                elif "add" in command:
                    node = cluster.add_node(**{"temp_dir": temp_dir, **command["add"]})
                    nodes[node.node_id] = node
                    answer({"node_id": node.node_id})
                elif "remove" in command:
                    _kill_node(cluster, nodes.pop(command["remove"]))
                    answer({})
                else:
                    answer({"error": f"unknown command {command}"})
            except Exception as exc:  # answer, and keep the cluster for the next command
                answer({"error": f"{type(exc).__name__}: {exc}"})
    finally:
        if cluster is not None:
            for node in list(cluster.worker_nodes):
                cluster.remove_node(node, allow_graceful=False)
            cluster.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)


def _kill_node(cluster, node) -> None:
    """Every process of the node at once: its raylet and services, and the workers under them."""
    import psutil
    from ray._private import ray_constants

    raylet = node.all_processes[ray_constants.PROCESS_TYPE_RAYLET][0].process
    children = psutil.Process(raylet.pid).children(recursive=True)
    cluster.remove_node(node, allow_graceful=False)
    for child in children:
        try:
            os.kill(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


if __name__ == "__main__":
    sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]  # not tests/
    _serve()
