"""Benchmark: ms per inference of every production model at its production size(s), onnxruntime vs
OpenVINO on the CPU (analyzers/runtime/session.py picks OpenVINO under VIGIL_CPU_RUNTIME=auto only
where it won by more than 10 % here).

Not a test: it prints measured numbers. Run it on an otherwise idle machine, twice, and keep the
second run (the first warms the page cache and the CPU's clocks):

    .venv/bin/python tests/benchmarks/bench_runtimes.py            # 2 threads, 40 runs per case
    .venv/bin/python tests/benchmarks/bench_runtimes.py --json out.json --markdown

Two measurements per model and runtime, on ready-made random inputs (the model's cost only; the
pre-processing around it is the same code for both runtimes):

- latency: one caller, a session with ``--threads`` threads (2 = every core of the build machine):
  median and p90 ms of single runs after ``--warmup`` runs. The runs of the two runtimes alternate in
  blocks of 5, so a drift in the machine's speed hits both alike, with a pause and an untimed run
  before each block: without it, the threads the other runtime left spinning took a core away and
  made either runtime's 2-thread latency look up to 2x worse at random.
- gateway: how the gateway runs a model: a session with 1 thread shared by one inference worker per
  core (``--workers``, default every core), each running inferences back to back; ms of wall time per
  inference (throughput), the number that decides how many cameras a box carries.

Models: YOLOX-Nano (pack, dynamic H/W) at 416x416, 640x352 and 640x480; the project's detectors
config/models/{ppe,cigarette,phone}/*.onnx at 416x416 and 640x352 when they are there (and any
``--detector FILE``); MoveNet MultiPose at its card's size; BlazePose landmark; EfficientNet-Lite0 at
batch 1/8/32; the classifier cards of config/models/*/ at batch 1 and 8.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from analyzers.runtime.card import read_card  # noqa: E402
from analyzers.runtime.openvino_session import OpenVinoSession, openvino_available  # noqa: E402

CARDS = ROOT / "config" / "models"
TRAINED_DETECTORS = ("ppe", "cigarette", "phone")
CLASSIFIERS = ("helmet", "fire", "smoking", "workwear")
BLOCK = 5  # latency runs of one runtime in a row; the runtimes alternate block by block
SETTLE_S = 0.2  # pause before each block
OTHERS_MAX = 0.05  # a case measured while other processes used more of the CPU is measured again
NUMPY = {"tensor(float)": np.float32, "tensor(int32)": np.int32, "tensor(uint8)": np.uint8}


@dataclass
class Case:
    model: str  # what the table calls it
    size: str  # "640x352", "batch 8", ...
    path: Path
    shape: tuple[int, ...]
    high: float = 1.0  # inputs are uniform in [0, high): pixel range of the model
    results: dict[str, dict[str, float]] = field(default_factory=dict)
    others: float = 0.0  # share of the CPU other processes used while it was measured


def cases(pack: Path, extra_detectors: list[Path]) -> list[Case]:
    found: list[Case] = []
    yolox = pack / "yolox_nano" / "yolox_nano_dynamic.onnx"
    for w, h in ((416, 416), (640, 352), (640, 480)):
        found.append(Case("yolox_nano (COCO)", f"{w}x{h}", yolox, (1, 3, h, w), 255.0))
    detectors = [CARDS / n / f"{n}.onnx" for n in TRAINED_DETECTORS] + extra_detectors
    for path in detectors:
        if not path.is_file():
            print(f"(no {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: skipped)")
            continue
        for w, h in ((416, 416), (640, 352)):
            found.append(Case(f"{path.stem} (YOLOX)", f"{w}x{h}", path, (1, 3, h, w), 255.0))
    movenet = read_card(CARDS / "movenet_multipose.yaml", pack / "movenet_multipose")
    w, h = movenet.input.size
    found.append(
        Case("movenet_multipose", f"{w}x{h}", pack / "movenet_multipose" / movenet.file, (1, h, w, 3), 255.0)
    )
    found.append(
        Case(
            "blazepose_landmark",
            "256x256",
            pack / "blazepose_landmark" / "pose_landmark_lite.onnx",
            (1, 256, 256, 3),
        )
    )
    embed = pack / "efficientnet_lite0" / "efficientnet_lite0_embedding.onnx"
    for n in (1, 8, 32):
        found.append(Case("efficientnet_lite0", f"224, batch {n}", embed, (n, 3, 224, 224)))
    for name in CLASSIFIERS:
        card_file = CARDS / f"{name}.yaml"
        if not card_file.is_file():
            continue
        card = read_card(card_file, CARDS / name)
        w, h = card.input.size
        for n in (1, 8):
            found.append(
                Case(f"{name} (classifier)", f"{w}, batch {n}", CARDS / name / card.file, (n, 3, h, w))
            )
    return found


def open_runtime(runtime: str, path: Path, threads: int) -> Any:
    if runtime == "openvino":
        return OpenVinoSession(path, threads)
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def feeds_for(session: Any, case: Case) -> dict[str, np.ndarray]:
    (node,) = session.get_inputs()
    rng = np.random.default_rng(0)
    return {node.name: (rng.random(case.shape) * case.high).astype(NUMPY[node.type])}


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def latency(
    sessions: dict[str, Any], feeds: dict[str, np.ndarray], runs: int, warmup: int
) -> dict[str, list[float]]:
    for session in sessions.values():
        for _ in range(warmup):
            session.run(None, feeds)
    times: dict[str, list[float]] = {name: [] for name in sessions}
    while min(len(t) for t in times.values()) < runs:
        for name, session in sessions.items():
            # The other runtime's idle threads spin for a while after its last run (onnxruntime's
            # intra-op pool, OpenVINO's TBB workers) and would take a core from this one's.
            time.sleep(SETTLE_S)
            session.run(None, feeds)
            for _ in range(min(BLOCK, runs - len(times[name]))):
                start = time.perf_counter()
                session.run(None, feeds)
                times[name].append((time.perf_counter() - start) * 1000)
    return times


def gateway_ms(session: Any, feeds: dict[str, np.ndarray], workers: int, runs: int) -> float:
    """Wall ms per inference with ``workers`` threads running the shared 1-thread session at once."""
    for _ in range(2):  # every worker's first run (OpenVINO compiles a model per concurrent caller)
        ts = [threading.Thread(target=session.run, args=(None, feeds)) for _ in range(workers)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    per_worker = max(2, runs // workers)

    def work() -> None:
        for _ in range(per_worker):
            session.run(None, feeds)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return (time.perf_counter() - start) * 1000 / (per_worker * workers)


def measure(case: Case, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    runtimes = ("onnxruntime", "openvino")
    sessions = {r: open_runtime(r, case.path, args.threads) for r in runtimes}
    feeds = feeds_for(sessions["onnxruntime"], case)
    probe = time.perf_counter()
    sessions["onnxruntime"].run(None, feeds)
    est_ms = (time.perf_counter() - probe) * 1000
    runs = max(15, min(args.runs, int(args.budget_s * 1000 / max(est_ms, 0.01) / 2)))
    times = latency(sessions, feeds, runs, args.warmup)
    results: dict[str, dict[str, float]] = {
        r: {"median": statistics.median(times[r]), "p90": pct(times[r], 90), "runs": runs} for r in runtimes
    }
    del sessions
    if not args.no_gateway:
        shared = {r: open_runtime(r, case.path, 1) for r in runtimes}
        rounds: dict[str, list[float]] = {r: [] for r in runtimes}
        for _ in range(2):  # alternate; the faster round counts (interference only slows a round down)
            for r in runtimes:
                time.sleep(SETTLE_S)
                rounds[r].append(gateway_ms(shared[r], feeds, args.workers, runs))
        for r in runtimes:
            results[r]["gateway"] = min(rounds[r])
    return results


def cpu_snapshot() -> tuple[float, float, float]:
    """(CPU seconds busy on the whole machine, this process's CPU seconds, wall seconds)."""
    with open("/proc/stat", encoding="ascii") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    tick = os.sysconf("SC_CLK_TCK")
    own = os.times()
    return (sum(fields[:8]) - idle) / tick, own.user + own.system, time.monotonic()


def others_load(before: tuple[float, float, float], after: tuple[float, float, float]) -> float:
    """Share of the machine's CPU that other processes used between two snapshots."""
    busy, own, wall = (a - b for a, b in zip(after, before, strict=True))
    return max(0.0, busy - own) / max(wall * (os.cpu_count() or 1), 1e-9)


def wait_idle(limit_s: float) -> None:
    """Wait (up to ``limit_s``) until other processes use under 5 % of the CPU for 2 s running."""
    deadline = time.monotonic() + limit_s
    quiet = 0
    while time.monotonic() < deadline and quiet < 2:
        before = cpu_snapshot()
        time.sleep(1.0)
        quiet = quiet + 1 if others_load(before, cpu_snapshot()) < 0.05 else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--pack",
        type=Path,
        default=Path(os.environ.get("VIGIL_MODELS_DIR", ROOT.parent / "shared" / "models")),
    )
    parser.add_argument("--threads", type=int, default=2, help="threads of the latency sessions (default 2)")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="gateway workers (default: cores)"
    )
    parser.add_argument("--runs", type=int, default=40, help="timed runs per case and runtime (default 40)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--budget-s", type=float, default=8.0, help="fewer runs for slow cases (>= 15 runs)")
    parser.add_argument("--no-gateway", action="store_true", help="latency only")
    parser.add_argument("--detector", type=Path, action="append", default=[], help="another YOLOX ONNX")
    parser.add_argument("--only", default="", help="only cases whose model name contains this")
    parser.add_argument(
        "--wait-idle", type=float, default=600.0, help="seconds to wait for an idle CPU before each case"
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=3,
        help="measure a case again when other processes used over OTHERS_MAX of the CPU",
    )
    parser.add_argument("--json", type=Path, help="write the numbers here")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parser.parse_args()
    if not openvino_available():
        raise SystemExit("openvino is not installed: pip install 'vigil[openvino]'")
    import onnxruntime as ort
    import openvino as ov

    print(
        f"onnxruntime {ort.__version__}, openvino {ov.__version__}, {os.cpu_count()} CPUs, "
        f"latency threads {args.threads}, gateway workers {args.workers} x 1 thread"
    )
    todo = [c for c in cases(args.pack, args.detector) if args.only in c.model]
    for case in todo:
        for _attempt in range(1 + args.retries):
            if args.wait_idle:
                wait_idle(args.wait_idle)
            before = cpu_snapshot()
            case.results = measure(case, args)
            case.others = others_load(before, cpu_snapshot())
            if case.others <= OTHERS_MAX:
                break
            print(f"  (other processes used {case.others:.0%} of the CPU: measuring again)", flush=True)
        ort_r, ov_r = case.results["onnxruntime"], case.results["openvino"]
        gw = (
            f" | gateway {ort_r['gateway']:7.2f} vs {ov_r['gateway']:7.2f} ms/inf "
            f"x{ort_r['gateway'] / ov_r['gateway']:.2f}"
            if not args.no_gateway
            else ""
        )
        print(
            f"{case.model:24s} {case.size:16s} ort {ort_r['median']:7.2f} (p90 {ort_r['p90']:7.2f})  "
            f"ov {ov_r['median']:7.2f} (p90 {ov_r['p90']:7.2f})  "
            f"ort/ov x{ort_r['median'] / ov_r['median']:.2f}"
            f"{gw} | others {case.others:.0%}",
            flush=True,
        )
    if args.markdown:
        print()
        head = "| model | input | onnxruntime median / p90 ms | OpenVINO median / p90 ms | ort/OV |"
        sep = "|---|---|---|---|---|"
        if not args.no_gateway:
            head += " gateway ms/inf ort | OV | ort/OV |"
            sep += "---|---|---|"
        head += " others |"
        sep += "---|"
        print(head)
        print(sep)
        for c in todo:
            a, b = c.results["onnxruntime"], c.results["openvino"]
            row = (
                f"| {c.model} | {c.size} | {a['median']:.1f} / {a['p90']:.1f} "
                f"| {b['median']:.1f} / {b['p90']:.1f} "
                f"| {a['median'] / b['median']:.2f} |"
            )
            if not args.no_gateway:
                row += f" {a['gateway']:.1f} | {b['gateway']:.1f} | {a['gateway'] / b['gateway']:.2f} |"
            print(row + f" {c.others:.0%} |")
    if args.json:
        args.json.write_text(
            json.dumps(
                [
                    {"model": c.model, "size": c.size, "file": str(c.path), "others": c.others, **c.results}
                    for c in todo
                ],
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
