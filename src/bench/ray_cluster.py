"""A real two-node Ray cluster on loopback (ray.cluster_utils.Cluster) for the `--engine ray` tests and figures.

Every Ray process it starts is ended by process id (the cluster's own handles), never `ray stop`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from src.serve.ray_engine import FAST_FAILURE_SYSTEM_CONFIG, REPO_ROOT, use_loopback

NODE_ARGS: dict[str, Any] = {"node_ip_address": "127.0.0.1", "include_dashboard": False,
                             "object_store_memory": 100 * 1024 * 1024}


@contextmanager
def two_node_cluster(cpus_per_node: int = 4) -> Iterator[Any]:
    """Head and one worker node on 127.0.0.1, this process connected as the driver."""
    import ray
    from ray.cluster_utils import Cluster

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    use_loopback()
    cluster = Cluster(initialize_head=True, head_node_args={**NODE_ARGS, "num_cpus": cpus_per_node,
                                                            "_system_config": FAST_FAILURE_SYSTEM_CONFIG})
    try:
        cluster.worker = cluster.add_node(**NODE_ARGS, num_cpus=cpus_per_node)  # type: ignore[attr-defined]  # kept on the cluster for kill_node
        ray.init(address=cluster.address, _node_ip_address="127.0.0.1", runtime_env={"env_vars": {"PYTHONPATH": REPO_ROOT}},
                 log_to_driver=False, configure_logging=False)
        cluster.wait_for_nodes()
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


def kill_node(cluster: Any, node: Any) -> list[int]:
    """SIGKILL one node's processes by pid (raylet first; its workers follow)."""
    pids = [p.process.pid for procs in node.all_processes.values() for p in procs]
    cluster.remove_node(node, allow_graceful=False)
    return pids
