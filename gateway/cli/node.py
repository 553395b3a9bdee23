"""`vigil node start` (join a machine to the Ray cluster as an analysis node, or start its head) and
`vigil cluster status|rebalance` (where each camera runs, the nodes' load; spread the cameras).

`node start` runs Ray's own `ray start` (the `cluster` extra) with the resources vigil places cameras
by: ``camera_slots`` (how many cameras this node takes), CPUs and GPUs, and any affinity labels.
`cluster status` asks the control node's API (GET /api/cluster) with a token from $VIGIL_TOKEN.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from gateway.cli.common import open_config, print_json

EXIT_BAD = 2
TOKEN_ENV = "VIGIL_TOKEN"  # noqa: S105 (the name of a variable, not a secret)


def register(sub: Any) -> None:
    node = sub.add_parser("node", help="analysis nodes of a Ray cluster (scale-out)").add_subparsers(
        dest="node_command", required=True
    )
    p = node.add_parser("start", help="join this machine to the Ray cluster (or start the head with --head)")
    p.add_argument("--address", help="the head's HOST:PORT (an analysis node joins it)")
    p.add_argument("--head", action="store_true", help="start the cluster's head here (on the control node)")
    p.add_argument("--port", type=int, default=6379, help="the head's port (with --head)")
    p.add_argument(
        "--camera-slots", type=int, help="cameras this node analyses (default: 4 per CPU; 0 on --head)"
    )
    p.add_argument("--num-cpus", type=int, help="CPUs Ray may use here (default: all)")
    p.add_argument("--num-gpus", type=int, help="GPUs Ray may use here (default: all it finds)")
    p.add_argument("--label", action="append", default=[], help="affinity resource this node offers (repeat)")
    p.add_argument("--node-ip", help="the address other nodes reach this one at")
    p.add_argument("--block", action="store_true", help="stay in the foreground (containers)")
    p.set_defaults(func=cmd_node_start)

    cluster = sub.add_parser("cluster", help="where cameras run and the nodes' load").add_subparsers(
        dest="cluster_command", required=True
    )
    p = cluster.add_parser("status", help="each camera's node and each node's load (asks the control node)")
    p.add_argument("--url", help="the control node's API (default: http://server.host:server.port)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_cluster_status)
    p = cluster.add_parser("rebalance", help="spread the cameras evenly over the live analysis nodes")
    p.add_argument("--url", help="the control node's API (default: http://server.host:server.port)")
    p.set_defaults(func=cmd_cluster_rebalance)


def ray_start_command(args: argparse.Namespace, ray_bin: str) -> list[str]:
    """The `ray start` command line for these options."""
    cpus = args.num_cpus if args.num_cpus is not None else os.cpu_count() or 1
    slots = args.camera_slots if args.camera_slots is not None else (0 if args.head else 4 * cpus)
    resources: dict[str, float] = {"camera_slots": float(slots)} if slots else {}
    for label in args.label:
        resources[label] = 1000.0
    cmd = [ray_bin, "start", "--disable-usage-stats"]
    if args.head:
        cmd += ["--head", f"--port={args.port}", "--include-dashboard=false"]
    else:
        cmd += [f"--address={args.address}"]
    if args.num_cpus is not None:
        cmd += [f"--num-cpus={args.num_cpus}"]
    if args.num_gpus is not None:
        cmd += [f"--num-gpus={args.num_gpus}"]
    if resources:
        cmd += [f"--resources={json.dumps(resources)}"]
    if args.node_ip:
        cmd += [f"--node-ip-address={args.node_ip}"]
    if args.block:
        cmd += ["--block"]
    return cmd


def cmd_node_start(args: argparse.Namespace) -> int:
    if not args.head and not args.address:
        print("vigil node start: give --address HEAD:PORT, or --head on the control node", file=sys.stderr)
        return EXIT_BAD
    for label in args.label:
        if not label.replace("_", "a").isalnum() or not label[0].isalpha():
            print(f"vigil node start: --label {label!r}: use letters, digits and '_'", file=sys.stderr)
            return EXIT_BAD
    ray_bin = shutil.which("ray", path=str(Path(sys.executable).parent)) or shutil.which("ray")
    if ray_bin is None:
        print(
            "vigil node start: Ray is not installed: pip install 'vigil[cluster]' "
            "(GPU nodes: 'vigil[cluster,gpu]')",
            file=sys.stderr,
        )
        return EXIT_BAD
    cmd = ray_start_command(args, ray_bin)
    print("running:", " ".join(cmd), flush=True)
    return subprocess.call(cmd)


def _api(args: argparse.Namespace, method: str, path: str) -> Any:
    config, _ = open_config(args)
    url = (args.url or f"http://{config.server.host}:{config.server.port}").rstrip("/")
    token = os.environ.get(TOKEN_ENV)
    if not token:
        raise ValueError(f"set {TOKEN_ENV} to an API token (scope cameras:read; rebalance: cameras:write)")
    try:
        response = httpx.request(method, url + path, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    except httpx.HTTPError as exc:
        raise ValueError(f"the control node at {url} cannot be reached: {exc}") from exc
    if response.status_code != 200:
        raise ValueError(f"the control node answered {response.status_code}: {response.text[:300]}")
    return response.json()


def cmd_cluster_status(args: argparse.Namespace) -> int:
    try:
        status = _api(args, "GET", "/api/cluster")
    except ValueError as exc:
        print(f"vigil cluster status: {exc}", file=sys.stderr)
        return EXIT_BAD
    if args.json:
        print_json(status)
        return 0
    print(f"engine: {status['engine']}")
    print(f"{'node':14} {'address':16} {'cameras':>7} {'slots':>6} {'load':>6} {'cpu':>6}")
    for n in status["nodes"]:
        load = "-" if n.get("load") is None else f"{n['load']:.2f}"
        cpu = "-" if n.get("cpu") is None else f"{n['cpu']:.2f}"
        slots = n.get("camera_slots", "-")
        print(
            f"{n['node_id'][:14]:14} {n.get('address', ''):16} {n['cameras']:>7} {slots!s:>6} "
            f"{load:>6} {cpu:>6}"
        )
    print(f"\n{'camera':24} {'node':14} {'state':18} {'stream':10} {'frames':>8} {'spooled':>8}")
    for c in status["cameras"]:
        spool = (c.get("spool") or {}).get("pending", "-")
        node = (c.get("node_id") or "-")[:14]
        print(
            f"{c['camera_id'][:24]:24} {node:14} {c['state'][:18]:18} {str(c.get('stream') or '-'):10} "
            f"{c.get('frames_analysed', 0):>8} {spool!s:>8}"
        )
    return 0


def cmd_cluster_rebalance(args: argparse.Namespace) -> int:
    try:
        result = _api(args, "POST", "/api/cluster/rebalance")
    except ValueError as exc:
        print(f"vigil cluster rebalance: {exc}", file=sys.stderr)
        return EXIT_BAD
    for move in result["moves"]:
        print(f"camera {move['camera_id']}: node {move['from'][:14]} -> {move['to'][:14]}")
    if not result["moves"]:
        print("the cameras are spread evenly already")
    return 0
