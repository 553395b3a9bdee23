"""Video diagnosis of a camera: after a camera was turned or refocused on purpose, an operator takes
its current picture as the new reference, so the moved-view (场景变更) and blur checks judge against
the view as it is now; the open moved-view alarm then clears by itself on the next checks."""

from __future__ import annotations

import asyncio
import logging
import re

from aiohttp import web

from gateway.api.http import ApiError, request_lang, route
from gateway.api.keys import GATEWAY, principal

log = logging.getLogger(__name__)
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

# (English, 中文) of each refusal; the answer's message is in the caller's language, details carry both.
MESSAGES = {
    "bad_id": (
        "a camera id is 1-64 letters, digits, '.', '_' or '-'",
        "摄像机编号为 1-64 个字母、数字、'.'、'_' 或 '-'",
    ),
    "not_diagnosed": (
        "camera {id} is not diagnosed here: start it (and keep its diagnosis enabled), then try again",
        "摄像机 {id} 未在本网关进行视频诊断：请先启动该摄像机（并启用视频诊断）后重试",
    ),
    "no_picture": (
        "camera {id} has no current picture: wait until its stream is online, then try again",
        "摄像机 {id} 当前没有画面：请等待视频流恢复在线后重试",
    ),
}


def _refusal(status: int, code: str, lang: str, **params: str) -> ApiError:
    en, zh = (text.format(**params) for text in MESSAGES[code])
    return ApiError(status, zh if lang == "zh" else en, {"message_en": en, "message_zh": zh})


@route(
    "POST",
    "/api/cameras/{camera_id}/diagnosis/reference",
    scope="diagnosis:write",
    tag="cameras",
    summary="Take the camera's current picture as its video diagnosis reference (after it was turned "
    "or refocused on purpose): the moved-view and blur checks judge against it from now on",
)
async def reset_reference(request: web.Request) -> web.Response:
    gw, camera_id = request.app[GATEWAY], request.match_info["camera_id"]
    lang = request_lang(request)
    if not ID_RE.match(camera_id):
        raise _refusal(400, "bad_id", lang)
    runner = gw.analytics.runners.get(camera_id)
    if runner is None or gw.health.diagnosis(camera_id) is None:
        raise _refusal(409, "not_diagnosed", lang, id=camera_id)
    frame = runner.latest
    if frame is None or runner.health.state != "online":
        raise _refusal(503, "no_picture", lang, id=camera_id)
    await asyncio.to_thread(gw.health.set_reference, camera_id, frame.image)
    log.info("camera %s: diagnosis reference reset by %s", camera_id, principal(request).name)
    return web.json_response(
        {"camera_id": camera_id, "taken_at": frame.ts, "diagnosis": gw.health.state(camera_id)}
    )
