"""`vigil seed`: fill a database with realistic cameras and alarms, for load tests and demonstrations.

Cameras carry plant areas, locations, scenes and regions; alarms spread over the period with a scene
mix, riskier cameras, busy working hours and quiet weekends; each alarm's status, verdict, disposal
and revisions follow the lifecycle (gateway/alarms/lifecycle.py) with plausible delays. Every alarm points at
one shared small JPEG, so 200,000 alarms need one evidence file.

Seeded rows are recognisable: camera ids start with ``seed-``, their origin is ``seed`` (the gateway
lists them but never opens their made-up streams) and alarm event keys start with ``seed:``. A new run
replaces the previous seed; it refuses a database holding real alarms unless forced.
"""

from __future__ import annotations

import argparse
import bisect
import datetime as dt
import math
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import cv2
import numpy as np
from sqlalchemy import Connection, delete, func, insert, select, update
from tqdm import tqdm

from analyzers.scenes import CATALOGUE
from gateway.cli.common import open_config, open_database
from gateway.db import Database
from gateway.db.files import EvidenceStore
from gateway.db.schema import Alarm, AlarmRevision, Camera, CameraScene, Disposal, Evidence, Source

CAMERA_PREFIX = "seed-"
EVENT_PREFIX = "seed:"
ORIGIN = "seed"
BATCH = 5000
_ULID = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

# Plant areas with the places a camera watches in each.
AREAS: dict[str, list[str]] = {
    "一号装置区": ["反应器平台", "泵房", "压缩机厂房", "管廊"],
    "罐区": ["T-101 东侧", "T-102 防火堤", "装车栈台", "消防泵房"],
    "仓库": ["危化品库", "成品库", "装卸口", "叉车通道"],
    "码头": ["一号泊位", "输油臂", "吊装区"],
    "动力车间": ["锅炉房", "配电室", "空压站"],
    "维修车间": ["动火作业点", "焊接区", "吊装区"],
    "污水处理站": ["曝气池", "加药间"],
    "办公区": ["东大门", "西大门", "中控室", "食堂"],
}
# Relative frequency of each scene's alarms, and the scenes a camera in such an area runs.
SCENE_WEIGHT: dict[str, float] = {
    "helmet": 24,
    "workwear": 12,
    "intrusion": 12,
    "smoking": 8,
    "phone": 8,
    "off_post": 7,
    "crowd": 5,
    "lifting_zone": 5,
    "sleeping": 4,
    "smoke": 3,
    "flame": 2,
    "extinguisher": 2,
    "rigger_on_post": 2,
    "supervisor_present": 2,
    "custom": 1,
}
PRIORITY = {"flame": 4, "smoke": 4, "intrusion": 3, "lifting_zone": 3, "extinguisher": 3}
REGIONS = ["A区", "B区", "通道", "平台", "入口", "作业面"]
# Alarms per local hour of day (work shifts 8-18 are busy) and per weekday (Mon=0; weekends quiet).
HOUR_WEIGHT = [1, 1, 1, 1, 1, 2, 3, 5, 9, 10, 10, 9, 6, 8, 10, 10, 9, 7, 4, 3, 2, 2, 1, 1]
WEEKDAY_WEIGHT = [1.0, 1.05, 1.0, 1.0, 0.95, 0.5, 0.4]
OPERATORS = ["zhang.wei", "li.na", "wang.fang", "liu.yang", "chen.jing"]
HANDLERS = ["赵班长", "钱安全员", "孙工", "李主任", "周队长"]
RESULTS = ["已现场纠正", "已责令整改", "已通报批评", "已停工整改", "已处置完毕"]
MEASURES = ["现场口头提醒", "加强巡检", "班前会教育", "设置警示标识", "更换防护用品"]
REJECT_REASONS = ["误检：反光", "误检：人形标牌", "误检：遮挡", "授权作业人员", "演练"]


Revision = tuple[str, str, float, dict[str, Any], str | None]  # action, actor, epoch s, changes, note


class SeedRefused(RuntimeError):
    """The database holds data the seed must not mix with (the message says what to do)."""


@dataclass
class SeedReport:
    cameras: int = 0
    alarms: int = 0
    revisions: int = 0
    disposals: int = 0
    evidence: int = 0
    replaced: int = 0  # alarms of an earlier seed removed first
    seconds: float = 0.0
    by_status: dict[str, int] = field(default_factory=dict)


@dataclass
class _CameraPlan:
    id: str
    area: str
    scenes: list[str]
    scene_ids: dict[str, int]
    regions: dict[str, list[str]]
    weight: float


def ulid_at(ms: int, rng: random.Random) -> str:
    """A ULID for a past time (gateway.ids is monotonic from now on, which a back-dated seed is not)."""
    rand = rng.getrandbits(80)
    out = []
    for value, length in ((ms, 10), (rand, 16)):
        chars = []
        for _ in range(length):
            value, rem = divmod(value, 32)
            chars.append(_ULID[rem])
        out.append("".join(reversed(chars)))
    return "".join(out)


def seed_jpeg() -> bytes:
    """A small 320x180 picture that says what it is."""
    image = np.zeros((180, 320, 3), np.uint8)
    image[:] = np.linspace(40, 120, 320, dtype=np.uint8)[None, :, None]
    cv2.rectangle(image, (120, 50), (200, 160), (0, 0, 255), 2)
    cv2.putText(image, "vigil seed", (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
    assert ok
    return bytes(buf.tobytes())


def check_database(db: Database, force: bool) -> None:
    with db.session() as s:
        real = s.scalar(
            select(func.count()).select_from(Alarm).where(~Alarm.event_key.startswith(EVENT_PREFIX))
        )
    if real and not force:
        raise SeedRefused(
            f"the database holds {real} alarms that are not seeded; seed an empty or a test database, "
            "or pass --force to add seeded data next to them"
        )


def clear_seed(conn: Connection) -> int:
    """Remove an earlier seed (children first: evidence restricts alarm deletion)."""
    seeded = select(Alarm.id).where(Alarm.event_key.startswith(EVENT_PREFIX)).scalar_subquery()
    count = conn.scalar(
        select(func.count()).select_from(Alarm).where(Alarm.event_key.startswith(EVENT_PREFIX))
    )
    for table in (Evidence, Disposal, AlarmRevision):
        conn.execute(delete(table).where(table.alarm_id.in_(seeded)))
    conn.execute(delete(Alarm).where(Alarm.event_key.startswith(EVENT_PREFIX)))
    cams = select(Camera.id).where(Camera.origin == ORIGIN).scalar_subquery()
    conn.execute(delete(CameraScene).where(CameraScene.camera_id.in_(cams)))
    still_used = select(Alarm.camera_id).where(Alarm.camera_id.is_not(None)).distinct().scalar_subquery()
    conn.execute(delete(Camera).where(Camera.origin == ORIGIN, Camera.id.not_in(still_used)))
    return int(count or 0)


def _slots(days: float, now: dt.datetime, tz: ZoneInfo) -> tuple[list[float], list[float]]:
    """Start times (UTC epoch) of the local hours in the period and their cumulative alarm weights."""
    start = now - dt.timedelta(days=days)
    local = start.astimezone(tz).replace(minute=0, second=0, microsecond=0)
    starts, cum, total = [], [], 0.0
    end_ts, span = now.timestamp(), days * 86400
    while True:
        ts = local.astimezone(dt.UTC).timestamp()
        if ts >= end_ts:
            break
        age = (end_ts - ts) / span  # 1 = oldest: a slow upward trend towards today
        weight = HOUR_WEIGHT[local.hour] * WEEKDAY_WEIGHT[local.weekday()] * (1.3 - 0.3 * age)
        if ts + 3600 > start.timestamp():  # the first hour may be partly inside the period
            starts.append(ts)
            total += weight
            cum.append(total)
        # Step in UTC so DST changes neither repeat nor skip an hour.
        local = (local.astimezone(dt.UTC) + dt.timedelta(hours=1)).astimezone(tz)
    return starts, cum


def _lognormal_s(rng: random.Random, median_s: float, sigma: float = 0.9) -> float:
    return median_s * math.exp(rng.gauss(0.0, sigma))


def seed(
    db: Database,
    store: EvidenceStore,
    *,
    cameras: int = 100,
    alarms: int = 200_000,
    days: float = 180.0,
    seed_value: int = 0,
    timezone: str = "Asia/Shanghai",
    retention_days: int = 90,
    force: bool = False,
    now: dt.datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> SeedReport:
    """Write the seed (replacing an earlier one); ``progress`` gets the number of alarms written."""
    if cameras < 1 or alarms < 0 or days <= 0:
        raise ValueError("need at least 1 camera, 0 or more alarms and a period of more than 0 days")
    started = time.perf_counter()
    check_database(db, force)
    rng = random.Random(seed_value)
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    tz = ZoneInfo(timezone)
    report = SeedReport()
    digest, rel, _ = store.put(seed_jpeg(), "jpg")
    size = store.path(rel).stat().st_size
    with db.engine.begin() as conn:
        report.replaced = clear_seed(conn)
        plans = _write_cameras(conn, rng, cameras, now)
    report.cameras = len(plans)
    starts, cum = _slots(days, now, tz)
    cam_cum = list(_cumulative(p.weight for p in plans))
    # All occurrence times first, sorted, so ids (ULIDs) order like the times.
    times = sorted(
        starts[bisect.bisect_left(cum, rng.random() * cum[-1])] + rng.random() * 3600 for _ in range(alarms)
    )
    times = [min(t, now.timestamp() - 1) for t in times]
    ev = {"sha256": digest, "path": rel, "size": size}
    for lo in range(0, len(times), BATCH):
        rows = _alarm_batch(times[lo : lo + BATCH], plans, cam_cum, rng, now, ev, retention_days, report)
        with db.engine.begin() as conn:
            for table, items in rows:
                if items:
                    conn.execute(insert(table), items)
        if progress is not None:
            progress(min(BATCH, len(times) - lo))
    report.alarms = len(times)
    report.seconds = time.perf_counter() - started
    return report


def _cumulative(weights: Iterator[float] | list[float]) -> Iterator[float]:
    total = 0.0
    for w in weights:
        total += w
        yield total


def _write_cameras(conn: Connection, rng: random.Random, count: int, now: dt.datetime) -> list[_CameraPlan]:
    source_id = "seed-nvr"
    if conn.scalar(select(Source.id).where(Source.id == source_id)) is None:
        conn.execute(
            insert(Source),
            [
                {
                    "id": source_id,
                    "kind": "rtsp",
                    "name": "演示 NVR (seed)",
                    "settings": {},
                    "status": "online",
                }
            ],
        )
    plans, cam_rows, scene_rows = [], [], []
    areas = list(AREAS)
    scene_keys = [k for k in SCENE_WEIGHT if k in CATALOGUE]
    for i in range(count):
        cam_id = f"{CAMERA_PREFIX}cam-{i + 1:03d}"
        area = areas[i % len(areas)]
        spot = AREAS[area][(i // len(areas)) % len(AREAS[area])]
        scenes = sorted(
            set(rng.choices(scene_keys, weights=[SCENE_WEIGHT[k] for k in scene_keys], k=rng.randint(1, 4)))
        )
        status = rng.choices(["online", "offline", "error"], weights=[85, 10, 5])[0]
        cam_rows.append(
            {
                "id": cam_id,
                "name": f"{area}{spot} {i + 1:03d}",
                "location": f"{area} / {spot}",
                "source_id": source_id,
                "origin": ORIGIN,
                "stream_url": f"rtsp://seed.invalid/{cam_id}",
                "transport": "tcp",
                "quality": "1080p main",
                "ptz": i % 7 == 0,
                "enabled": True,
                "status": status,
                "last_error": {"offline": "no frames for 30 s", "error": "connection refused"}.get(status),
                "last_frame_at": now
                - dt.timedelta(seconds=rng.randint(1, 5) if status == "online" else 3600),
                "codec": "h264",
                "width": 1920,
                "height": 1080,
                "alarm_settings": {"push": [], "recipients": [], "min_priority": 0},
                "created_at": now,
                "updated_at": now,
            }
        )
        regions: dict[str, list[str]] = {}
        for scene in scenes:
            names = rng.sample(REGIONS, rng.randint(1, 2))
            regions[scene] = names
            polygons = [
                {"name": n, "polygon": [[0.1 + 0.4 * j, 0.3], [0.45 + 0.4 * j, 0.3], [0.45 + 0.4 * j, 0.95]]}
                for j, n in enumerate(names)
            ]
            scene_rows.append(
                {
                    "camera_id": cam_id,
                    "scene": scene,
                    "enabled": True,
                    "settings": {"scene": scene, "regions": polygons, "min_duration_s": 3.0},
                    "tags": {"area": area},
                    "updated_at": now,
                }
            )
        # Risk is uneven: a few places cause most alarms (find them on the statistics page).
        plans.append(_CameraPlan(cam_id, area, scenes, {}, regions, 1.0 / (1 + rng.random() * 9) ** 1.5))
    # A camera of an earlier seed kept for alarms that are not seeded (--force) is updated in place.
    kept = set(conn.scalars(select(Camera.id).where(Camera.id.in_([c["id"] for c in cam_rows]))))
    for row in cam_rows:
        if row["id"] in kept:
            conn.execute(update(Camera).where(Camera.id == row["id"]).values(**row))
    if len(kept) < len(cam_rows):
        conn.execute(insert(Camera), [c for c in cam_rows if c["id"] not in kept])
    conn.execute(insert(CameraScene), scene_rows)
    ids = conn.execute(
        select(CameraScene.camera_id, CameraScene.scene, CameraScene.id).where(
            CameraScene.camera_id.startswith(CAMERA_PREFIX)
        )
    )
    by_cam = {p.id: p for p in plans}
    for cam_id, scene, row_id in ids:
        if cam_id in by_cam:
            by_cam[cam_id].scene_ids[scene] = row_id
    return plans


def _alarm_batch(
    times: list[float],
    plans: list[_CameraPlan],
    cam_cum: list[float],
    rng: random.Random,
    now: dt.datetime,
    ev: dict[str, Any],
    retention_days: int,
    report: SeedReport,
) -> list[tuple[Any, list[dict[str, Any]]]]:
    alarms: list[dict[str, Any]] = []
    revisions: list[dict[str, Any]] = []
    disposals: list[dict[str, Any]] = []
    evidence: list[dict[str, Any]] = []
    now_ts = now.timestamp()
    retention = dt.timedelta(days=retention_days)
    utc = dt.UTC
    for occurred in times:
        plan = plans[bisect.bisect_left(cam_cum, rng.random() * cam_cum[-1])]
        scene = rng.choices(plan.scenes, weights=[SCENE_WEIGHT[k] for k in plan.scenes])[0]
        region = rng.choice(plan.regions[scene])
        raised = occurred + rng.uniform(3, 8)  # the condition held min_duration_s first
        if raised >= now_ts:
            raised = now_ts - 0.5
        alarm_id = ulid_at(int(raised * 1000), rng)
        info = CATALOGUE[scene]
        raised_dt = dt.datetime.fromtimestamp(raised, utc)
        row: dict[str, Any] = {
            "id": alarm_id,
            "camera_id": plan.id,
            "camera_scene_id": plan.scene_ids.get(scene),
            "scene": scene,
            "region": region,
            "event_key": f"{EVENT_PREFIX}{alarm_id}",
            "status": "raised",
            "priority": PRIORITY.get(scene, 2),
            "score": round(rng.uniform(0.5, 0.99), 3),
            "message": f"{info.name_en} in {region} ({info.name_zh})",
            "details": {"boxes": [{"label": "person", "score": 0.8, "box": [120, 50, 200, 160]}]},
            "tags": {"area": plan.area},
            "occurred_at": dt.datetime.fromtimestamp(occurred, utc),
            "raised_at": raised_dt,
            "confirmed_at": None,
            "verdict": None,
            "verdict_reason": None,
            "cleared_at": None,
            "closed_at": None,
            "revision": 1,
            "updated_at": raised_dt,
        }
        revs: list[Revision] = [
            ("raised", "analyzer", raised, {"status": [None, "raised"], "score": row["score"]}, None)
        ]
        _lifecycle(row, revs, disposals, rng, raised, now_ts)
        row["revision"] = len(revs)
        row["updated_at"] = dt.datetime.fromtimestamp(revs[-1][2], utc)
        alarms.append(row)
        for n, (action, actor, at, changes, note) in enumerate(revs, start=1):
            revisions.append(
                {
                    "alarm_id": alarm_id,
                    "revision": n,
                    "action": action,
                    "actor": actor,
                    "at": dt.datetime.fromtimestamp(at, utc),
                    "changes": changes,
                    "note": note,
                }
            )
        for kind in ("snapshot_raw", "snapshot"):
            evidence.append(
                {
                    "alarm_id": alarm_id,
                    "kind": kind,
                    "sha256": ev["sha256"],
                    "path": ev["path"],
                    "media_type": "image/jpeg",
                    "size": ev["size"],
                    "created_at": raised_dt,
                    "retain_until": raised_dt + retention,
                }
            )
        report.by_status[row["status"]] = report.by_status.get(row["status"], 0) + 1
    report.revisions += len(revisions)
    report.disposals += len(disposals)
    report.evidence += len(evidence)
    return [(Alarm, alarms), (AlarmRevision, revisions), (Disposal, disposals), (Evidence, evidence)]


def _lifecycle(
    row: dict[str, Any],
    revs: list[Revision],
    disposals: list[dict[str, Any]],
    rng: random.Random,
    raised: float,
    now_ts: float,
) -> None:
    """Walk the alarm through confirm/reject, dispose, clear and close as people would, stopping at
    the first step that would lie in the future; recent alarms are more often still untouched."""
    utc = dt.UTC
    age_h = (now_ts - raised) / 3600
    untouched = 0.6 if age_h < 2 else 0.3 if age_h < 24 else 0.1 if age_h < 24 * 7 else 0.03
    if rng.random() < untouched:
        if age_h > 24 and rng.random() < 0.3:  # the condition ended and someone cleared it unverified
            at = raised + _lognormal_s(rng, 3600)
            if at < now_ts:
                row["status"], row["cleared_at"] = "cleared", dt.datetime.fromtimestamp(at, utc)
                revs.append(("cleared", rng.choice(OPERATORS), at, {"status": ["raised", "cleared"]}, None))
        return
    actor = rng.choice(OPERATORS)
    at = raised + _lognormal_s(rng, 300)  # a person looks within minutes
    if at >= now_ts:
        return
    if rng.random() < 0.28:  # false positive: rejected with a reason, later closed
        reason = rng.choice(REJECT_REASONS)
        row.update(
            status="rejected",
            verdict="false_positive",
            verdict_reason=reason,
            confirmed_at=dt.datetime.fromtimestamp(at, utc),
        )
        revs.append(
            (
                "rejected",
                actor,
                at,
                {"verdict": [None, "false_positive"], "reason": reason, "status": ["raised", "rejected"]},
                None,
            )
        )
        at += _lognormal_s(rng, 1800)
        if rng.random() < 0.85 and at < now_ts:
            row.update(status="closed", closed_at=dt.datetime.fromtimestamp(at, utc))
            revs.append(("closed", actor, at, {"status": ["rejected", "closed"]}, None))
        return
    row.update(status="confirmed", verdict="true_positive", confirmed_at=dt.datetime.fromtimestamp(at, utc))
    revs.append(
        (
            "confirmed",
            actor,
            at,
            {"verdict": [None, "true_positive"], "status": ["raised", "confirmed"]},
            None,
        )
    )
    at += _lognormal_s(rng, 2400)  # someone goes there and deals with it
    if rng.random() > 0.9 or at >= now_ts:
        return
    handler, result = rng.choice(HANDLERS), rng.choice(RESULTS)
    disposals.append(
        {
            "alarm_id": row["id"],
            "handler": handler,
            "handled_at": dt.datetime.fromtimestamp(at, utc),
            "result": result,
            "measures": rng.choice(MEASURES),
            "photos": [],
            "created_at": dt.datetime.fromtimestamp(at + 60, utc),
        }
    )
    row["status"] = "disposed"
    changes: dict[str, Any] = {
        "disposal": {"handler": handler, "result": result, "photos": 0},
        "status": ["confirmed", "disposed"],
    }
    revs.append(("disposed", actor, at + 60, changes, None))
    at += 60 + _lognormal_s(rng, 900)
    if rng.random() > 0.92 or at >= now_ts:
        return
    row.update(status="cleared", cleared_at=dt.datetime.fromtimestamp(at, utc))
    revs.append(
        (
            "cleared",
            actor,
            at,
            {"cleared_at": row["cleared_at"].isoformat(), "status": ["disposed", "cleared"]},
            None,
        )
    )
    at += _lognormal_s(rng, 3600)
    if rng.random() > 0.9 or at >= now_ts:
        return
    row.update(status="closed", closed_at=dt.datetime.fromtimestamp(at, utc))
    revs.append(("closed", actor, at, {"status": ["cleared", "closed"]}, None))


def cmd_seed(args: argparse.Namespace) -> int:

    config, _ = open_config(args)
    db = open_database(config)
    db.ensure_current()
    store = EvidenceStore(config.storage.root)
    url = db.engine.url.render_as_string(hide_password=True)
    print(
        f"seeding {url}: {args.cameras} cameras, {args.alarms} alarms over {args.days:g} days",
        file=sys.stderr,
    )
    with tqdm(total=args.alarms, unit="alarm", file=sys.stderr, disable=args.no_progress) as bar:
        try:
            report = seed(
                db,
                store,
                cameras=args.cameras,
                alarms=args.alarms,
                days=args.days,
                seed_value=args.seed,
                timezone=config.site.timezone,
                retention_days=config.storage.evidence_retention_days,
                force=args.force,
                progress=bar.update,
            )
        except SeedRefused as exc:
            print(str(exc), file=sys.stderr)
            return 1
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(report.by_status.items()))
    replaced = f" (replaced an earlier seed of {report.replaced} alarms)" if report.replaced else ""
    print(
        f"seeded {report.cameras} cameras and {report.alarms} alarms with {report.revisions} revisions, "
        f"{report.disposals} disposals, {report.evidence} evidence rows in {report.seconds:.1f} s"
        f"{replaced}; statuses: {statuses}"
    )
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("seed", help="fill the database with realistic cameras and alarms (load tests, demos)")
    p.add_argument("--cameras", type=_positive_int, default=100, help="cameras to create (default 100)")
    p.add_argument("--alarms", type=_count, default=200_000, help="alarms to create (default 200000)")
    p.add_argument("--days", type=float, default=180.0, help="period the alarms spread over (default 180)")
    p.add_argument("--seed", type=int, default=0, help="random seed: the same seed makes the same data")
    p.add_argument("--force", action="store_true", help="seed even though the database holds real alarms")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_seed)


def _positive_int(text: str) -> int:
    value = _count(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from exc
    if not 0 <= value <= 10_000_000:
        raise argparse.ArgumentTypeError("must be between 0 and 10000000")
    return value
