"""Camera density: how many sample RTSP cameras one box analyses at 1 frame/s, through the real gateway.

Not a test: it prints measured numbers. N cameras (person/intrusion + helmet + flame on each) read the
sample RTSP server (one mount, so the server encodes once however many cameras read it; every camera
has its own RTSP session, receive and decode) through a real `Gateway` with its API served (the event
path of the Ray engine goes through it). N grows until the analysis uses more than 80 % of the box's
cores or drops frames (fewer than 90 % of the samples analysed). For each N it prints the CPU the
analysis took per camera per second (= per analysed frame at 1 frame/s).

The per-camera split is measured beside it, on the same frames, in this process:
- decode: bare PyAV decoding of the stream's keyframes (what a 1 frame/s sample needs, GOP 1 s);
- inference: the scenes' models on the frames (pipeline.submit + the classifier cards on the people),
  no tracking and no scene rules;
- rules: the whole per-frame pipeline (bench_camera_cost's path) minus inference;
- receive: what the gateway measured minus the three above (RTSP, demuxing, the clip buffer, colour
  conversion, threads).
The bare limit is 80 % of the cores divided by decode + inference; the ratio is the measured density
over that limit.

--engine ray starts a local Ray cluster (head + --nodes analysis nodes sharing this box's cores;
ratios, not speed) and counts the CPU of the camera and model-server actors' processes.

Usage: python tests/benchmarks/bench_density.py [--engine local|ray] [--nodes 2] [--counts 2,4,8]
       [--seconds 20] [--size 1080p|source]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from analyzers import pipeline  # noqa: E402
from tests.benchmarks.bench_analyzers import PackModels, runner  # noqa: E402

SCENES: list[dict[str, Any]] = [
    {"scene": "intrusion", "min_duration_s": 3},
    {"scene": "helmet", "min_duration_s": 3},
    {"scene": "flame", "min_duration_s": 3},
]
TICK = os.sysconf("SC_CLK_TCK")


def make_stream_file(video: Path, size: str, out: Path) -> Path:
    """The sample video as the camera serves it: 1080p25 (upscaled, frames repeated) or as it is."""
    if size == "source":
        return video
    if out.is_file():
        return out
    frames = []
    with av.open(str(video)) as container:
        src_fps = float(container.streams.video[0].average_rate or 10)
        for frame in container.decode(video=0):
            frames.append(cv2.resize(frame.to_ndarray(format="bgr24"), (1920, 1080)))
            if len(frames) >= 20 * src_fps:
                break
    with av.open(str(out), "w") as dst:
        stream = dst.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 1920, 1080, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "23"}
        for i in range(int(len(frames) / src_fps * 25)):
            image = frames[min(len(frames) - 1, int(i * src_fps / 25))]
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                dst.mux(packet)
        for packet in stream.encode():
            dst.mux(packet)
    return out


def decode_keyframes_ms(path: Path) -> tuple[float, int, int]:
    """CPU ms to decode one keyframe (bare PyAV, as a 1 frame/s sample of a 1 s GOP stream), size."""
    t0 = time.process_time()
    n, width, height = 0, 0, 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "SLICE"
        stream.codec_context.skip_frame = "NONKEY"
        for frame in container.decode(stream):
            frame.to_ndarray(format="bgr24")
            n, width, height = n + 1, frame.width, frame.height
    return 1000 * (time.process_time() - t0) / max(1, n), width, height


def split_ms(models: Path, frames: list[np.ndarray]) -> tuple[float, float]:
    """(inference, inference + rules) CPU ms per frame of one camera running SCENES."""
    analytics = PackModels(models)
    r = runner(analytics, "split", SCENES)
    due = [run for run in r.runs if run.model is not None]
    for image in frames[:2]:  # warm-up
        futures = pipeline.submit(due, image)
        detections = {k: f.result() for k, f in futures.items()}
        pipeline.classify_parts(image, due, detections, {})
    t0 = time.process_time()
    for image in frames:
        futures = pipeline.submit(due, image)
        detections = {k: f.result() for k, f in futures.items()}
        pipeline.classify_parts(image, due, detections, {})
    inference = 1000 * (time.process_time() - t0) / len(frames)
    from adapters import Frame

    t0 = time.process_time()
    for i, image in enumerate(frames):
        r.analyse(Frame("split", 1_795_000_000.0 + i, image, float(i), True))
        r.drain()
    whole = 1000 * (time.process_time() - t0) / len(frames)
    r.stop()
    analytics.stop()
    return inference, whole


def sample_frames(path: Path, count: int) -> list[np.ndarray]:
    out = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.skip_frame = "NONKEY"
        for frame in container.decode(stream):
            out.append(frame.to_ndarray(format="bgr24"))
            if len(out) == count:
                break
    return out


def process_cpu(pids: list[int]) -> float:
    """CPU seconds (user + system) of these processes so far."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += (int(fields[11]) + int(fields[12])) / TICK
    return total


def actor_pids() -> list[int]:
    """The processes of the camera and model-server actors (their process titles say so)."""
    out = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True, check=True).stdout
    return [
        int(line.split()[0])
        for line in out.splitlines()
        if "ray::CameraActor" in line or "ray::ModelServer" in line
    ]


@dataclass
class Step:
    cameras: int
    cpu_ms: float  # per camera per second
    box_share: float  # of all cores
    analysed: float  # share of the samples analysed


async def measure(gw: Any, engine: str, cameras: int, warmup_s: float, seconds: float) -> Step:
    def analysed() -> int:
        if engine == "local":
            return sum(r.stats.frames_analysed for r in gw.analytics.runners.values())
        import ray  # asked of the actors now: the reconciler's copy lags by a poll

        actors = [p.actor for p in list(gw.engine.placements.values()) if p.actor is not None]
        return sum(
            s.get("frames_analysed", 0) for s in ray.get([a.status.remote() for a in actors], timeout=60)
        )

    for _ in range(180):  # every camera's first frame (at most 3 minutes)
        if await asyncio.to_thread(analysed) >= cameras:
            break
        await asyncio.sleep(1)
    await asyncio.sleep(warmup_s)
    pids = [os.getpid()] + (actor_pids() if engine == "ray" else [])
    cpu0, frames0, t0 = process_cpu(pids), await asyncio.to_thread(analysed), time.monotonic()
    await asyncio.sleep(seconds)
    cpu1, frames1, t1 = process_cpu(pids), await asyncio.to_thread(analysed), time.monotonic()
    wall = t1 - t0
    cores = os.cpu_count() or 1
    return Step(
        cameras,
        1000 * (cpu1 - cpu0) / (cameras * wall),
        (cpu1 - cpu0) / (cores * wall),
        (frames1 - frames0) / (cameras * wall),
    )


async def run_gateway(
    args: argparse.Namespace, url: str, cameras: int, tmp: Path, address: str | None
) -> Step:
    import yaml
    from aiohttp import web

    from gateway.api import create_app
    from gateway.app import Gateway
    from gateway.auth import issue_token
    from gateway.config.schema import load_config
    from gateway.db import Database, upgrade
    from gateway.models.pack import import_pack
    from tests.peers.ports import free_port

    port = free_port()
    folder = Path(tempfile.mkdtemp(prefix=f"n{cameras}-", dir=tmp))
    config: dict[str, Any] = {
        "database": {"url": "sqlite:///vigil.db"},
        "storage": {"root": "storage", "clip_pre_s": 0, "clip_post_s": 0},
        "server": {"host": "127.0.0.1", "port": port},
        "cameras": [
            {"id": f"cam-{i}", "name": f"cam {i}", "url": url, "scenes": SCENES} for i in range(cameras)
        ],
    }
    if args.engine == "ray":
        config["cluster"] = {"engine": "ray", "address": address, "ingest_url": f"http://127.0.0.1:{port}"}
    path = folder / "gateway.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    loaded = load_config(path, environ={})
    db = Database(loaded.database.url)
    upgrade(db.engine)
    own = ROOT / "config" / "models"  # the project's own cards (helmet, fire) beside the pack's models
    import_pack(db, loaded.storage.root, Path(args.models), own)
    import_pack(db, loaded.storage.root, own, own)
    with db.session() as s:
        os.environ["VIGIL_CLUSTER_TOKEN"], _ = issue_token(
            s, "bench", "machine", "operator", {"alarms:write"}
        )
    db.dispose()
    gw = Gateway(load_config(path, environ={}), path)
    app_runner = web.AppRunner(create_app(gw))
    await app_runner.setup()
    await web.TCPSite(app_runner, "127.0.0.1", port).start()
    try:
        return await measure(gw, args.engine, cameras, args.warmup, args.seconds)
    finally:
        if args.engine == "ray":
            await asyncio.to_thread(gw.engine.stop_all)  # type: ignore[attr-defined]
        await app_runner.cleanup()


def start_ray(nodes: int) -> Any:
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # loopback only
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    cores = os.cpu_count() or 1
    for _ in range(nodes):
        cluster.add_node(num_cpus=max(1, cores // nodes), resources={"camera_slots": 256})
    return cluster


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--models", default=os.environ.get("VIGIL_MODELS_DIR", str(ROOT.parent / "shared/models"))
    )
    media = os.environ.get("VIGIL_MEDIA_DIR", str(ROOT.parent / "shared/media"))
    parser.add_argument("--video", default=os.path.join(media, "vtest.avi"))
    parser.add_argument("--engine", choices=["local", "ray"], default="local")
    parser.add_argument("--nodes", type=int, default=2, help="analysis nodes of the local Ray cluster")
    parser.add_argument("--counts", default="2,4,8,12,16,24,32", help="camera counts to try, in order")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured window per count")
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--size", choices=["1080p", "source"], default="1080p")
    args = parser.parse_args()
    from adapters.rtsp.sample_camera import SampleRtspServer

    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="vigil-density-") as tmp_dir:
        tmp = Path(tmp_dir)
        stream = make_stream_file(Path(args.video), args.size, tmp / "camera-1080p25.mp4")
        decode_ms, width, height = decode_keyframes_ms(stream)
        frames = sample_frames(stream, 20)
        inference_ms, path_ms = split_ms(Path(args.models), frames)
        bare_ms = decode_ms + inference_ms
        limit = 0.8 * cores * 1000 / bare_ms
        print(
            f"{cores} cores; {width}x{height} H.264 GOP 1 s; scenes: {', '.join(s['scene'] for s in SCENES)}"
        )
        print(
            f"bare, per camera-second: decode {decode_ms:.1f} ms + inference {inference_ms:.1f} ms "
            f"-> limit {limit:.1f} cameras at 80 % of {cores} cores; rules {path_ms - inference_ms:.1f} ms"
        )
        cluster = start_ray(args.nodes) if args.engine == "ray" else None
        label = "local" if cluster is None else f"ray, {args.nodes} nodes"
        try:
            with SampleRtspServer({"cam": stream}, gop=25 if args.size == "1080p" else None) as server:
                last_ok: Step | None = None
                for n in (int(c) for c in args.counts.split(",")):
                    step = asyncio.run(
                        run_gateway(args, server.url("cam"), n, tmp, cluster.address if cluster else None)
                    )
                    receive = step.cpu_ms - path_ms - decode_ms
                    print(
                        f"[{label}] {n:3d} cameras: {step.cpu_ms:6.1f} ms CPU per camera-second "
                        f"(receive ~{receive:.1f}, decode {decode_ms:.1f}, inference {inference_ms:.1f}, "
                        f"rules {path_ms - inference_ms:.1f}); box {100 * step.box_share:5.1f} %; "
                        f"analysed {100 * step.analysed:5.1f} % of samples",
                        flush=True,
                    )
                    if step.box_share > 0.8 or step.analysed < 0.9:
                        break
                    last_ok = step
                if last_ok is not None:
                    per_box = 0.8 * cores * 1000 / last_ok.cpu_ms
                    print(
                        f"[{label}] cameras per box at 80 % CPU: {per_box:.1f} (from {last_ok.cpu_ms:.1f} ms "
                        f"per camera-second at {last_ok.cameras} cameras); "
                        f"ratio to the bare limit {per_box / limit:.2f}"
                    )
        finally:
            if cluster is not None:
                import ray

                ray.shutdown()
                cluster.shutdown()


if __name__ == "__main__":
    main()
