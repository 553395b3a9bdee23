"""`vigil cameras`: the cameras with their state and why one is down, and a stream test.

``vigil cameras`` (or ``vigil cameras list``) reads the database: each camera's state as the running
gateway last saved it (every few seconds), the fault in words (zh or en), where its settings live
(the YAML file, or the console once edited there) and its stream. ``vigil cameras test URL`` opens a
stream once, as the console's "test connection" does.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from typing import Any

from adapters import redact_url
from adapters.rtsp.probe import ProbeError, probe_stream
from gateway.cameras.faults import camera_fault, fault_message
from gateway.cameras.registry import listed_cameras
from gateway.cli.common import EXIT_BAD, open_config, open_database, print_json
from gateway.config.stream_url import stream_url_problem, url_message
from gateway.i18n import lang_of, t

LANG_CHOICES = ("zh", "en")
# Where a camera's settings live (Camera.origin): see README "Who owns a setting".
OWNERS = {
    "config": {"zh": "配置文件", "en": "YAML"},
    "api": {"zh": "控制台", "en": "console"},
    "seed": {"zh": "演示数据", "en": "seed"},
}
STATES = {
    "online": {"zh": "在线", "en": "online"},
    "offline": {"zh": "离线", "en": "offline"},
    "error": {"zh": "故障", "en": "error"},
    "starting": {"zh": "启动中", "en": "starting"},
    "stopped": {"zh": "已停止", "en": "stopped"},
    "unknown": {"zh": "未知", "en": "unknown"},
    "removed": {"zh": "已移除", "en": "removed"},
    "disabled": {"zh": "已停用", "en": "disabled"},
}
HEADERS = {
    "zh": ("编号", "名称", "状态", "配置来源", "码流", "最后画面 (UTC)", "故障原因"),
    "en": ("ID", "NAME", "STATE", "SETTINGS", "STREAM", "LAST FRAME (UTC)", "FAULT"),
}


def register(sub: Any) -> None:
    p = sub.add_parser("cameras", help="cameras with their state and fault reason; test a stream address")
    p.add_argument("--lang", choices=LANG_CHOICES, help="language of states and reasons (default: $LANG)")
    p.set_defaults(func=cmd_cameras_list, json=False, include_removed=False)
    cams = p.add_subparsers(dest="cameras_command")
    ls = cams.add_parser("list", help="list cameras: state, fault reason, settings owner, stream")
    ls.add_argument("--lang", choices=LANG_CHOICES, default=argparse.SUPPRESS, help="as for `vigil cameras`")
    ls.add_argument("--json", action="store_true")
    ls.add_argument("--include-removed", action="store_true", help="also cameras removed but kept for alarms")
    ls.set_defaults(func=cmd_cameras_list)
    test = cams.add_parser("test", help="open a stream once: codec, size and fps, or why not")
    test.add_argument("url")
    test.add_argument(
        "--lang", choices=LANG_CHOICES, default=argparse.SUPPRESS, help="as for `vigil cameras`"
    )
    test.add_argument("--transport", choices=("tcp", "udp"), default="tcp")
    test.add_argument("--timeout", type=float, default=8.0, help="seconds to wait for the camera (default 8)")
    test.set_defaults(func=cmd_cameras_test)


def cli_lang(args: argparse.Namespace) -> str:
    """--lang, else the terminal's language ($LC_ALL, $LANG: zh_CN.UTF-8 -> zh), else English."""
    if args.lang:
        return str(args.lang)
    env = os.environ.get("LC_ALL") or os.environ.get("LANG") or ""
    return lang_of(env.split(".")[0].replace("_", "-"), "en")


def _word(table: dict[str, dict[str, str]], key: str, lang: str) -> str:
    return table.get(key, {}).get(lang, key)


def cmd_cameras_list(args: argparse.Namespace) -> int:
    lang = cli_lang(args)
    config, _ = open_config(args)
    db = open_database(config)
    db.ensure_current()
    rows: list[dict[str, Any]] = []
    with db.session() as s:
        for cam in listed_cameras(s, args.include_removed):
            state = cam.status if cam.enabled or cam.status == "removed" else "disabled"
            fault = camera_fault(cam.status, cam.last_error, lang) if cam.enabled else None
            rows.append(
                {
                    "id": cam.id,
                    "name": cam.name,
                    "state": state,
                    "settings": cam.origin,
                    "stream_url": redact_url(cam.stream_url),
                    "codec": cam.codec,
                    "width": cam.width,
                    "height": cam.height,
                    "last_frame_at": cam.last_frame_at.replace(tzinfo=dt.UTC).isoformat(timespec="seconds")
                    if cam.last_frame_at
                    else None,
                    "fault": fault,
                    "last_error": cam.last_error,
                }
            )
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("暂无摄像机" if lang == "zh" else "no cameras")
        return 0
    table = [HEADERS["zh" if lang == "zh" else "en"]]
    for r in rows:
        size = f" {r['width']}x{r['height']}" if r["width"] and r["height"] else ""
        table.append(
            (
                r["id"],
                r["name"],
                _word(STATES, r["state"], lang),
                _word(OWNERS, r["settings"], lang),
                f"{r['stream_url']} {r['codec'] or ''}{size}".strip(),
                (r["last_frame_at"] or "-").replace("+00:00", ""),
                r["fault"]["message"] if r["fault"] else "",
            )
        )
    widths = [max(_width(row[i]) for row in table) for i in range(len(table[0]) - 1)]
    for row in table:
        cells = [cell + " " * (w - _width(cell)) for cell, w in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[-1]]).rstrip())
    return 0


def _width(text: str) -> int:
    """Columns a text takes in a terminal (CJK characters take two)."""
    return sum(2 if ord(c) >= 0x1100 and not 0xFF61 <= ord(c) <= 0xFFDC else 1 for c in text)


def cmd_cameras_test(args: argparse.Namespace) -> int:
    lang = cli_lang(args)
    problem = stream_url_problem(args.url)
    if problem is not None:
        print(f"vigil cameras test: {url_message(problem, lang)}", file=sys.stderr)
        return EXIT_BAD
    try:
        info = probe_stream(args.url, args.transport, args.timeout)
    except ProbeError as exc:
        print(f"vigil cameras test: {fault_message(exc.code, lang, exc.detail)}", file=sys.stderr)
        print(f"  ({exc.detail})", file=sys.stderr)
        return 1
    fps = f"{info.fps:g}" if info.fps else "?"
    print(t("probe.ok", lang, codec=info.codec.upper(), width=info.width, height=info.height, fps=fps))
    return 0
