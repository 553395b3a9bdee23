"""The caption burned into an alarm's annotated snapshot: scene, region and time in the site's language
and time zone, e.g. ``区域入侵 · lawn-east · 2026-12-07 21:40:05 CST``.

Chinese needs a CJK font: a packaged one is looked up (Debian's fonts-noto-cjk or fonts-wqy-zenhei,
installed by ``make system-deps``) or named by ``VIGIL_CAPTION_FONT``. Without one the caption falls back
to English (OpenCV's built-in font has no CJK glyphs), and the gateway says once what to install.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from analyzers.scenes import CATALOGUE
from gateway.i18n.alarm_text import region_text

log = logging.getLogger(__name__)

FONT_ENV = "VIGIL_CAPTION_FONT"
CJK_FONTS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Medium.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
)
FONT_PACKAGES = "fonts-noto-cjk or fonts-wqy-zenhei"


@lru_cache(maxsize=1)
def cjk_font_path() -> Path | None:
    """The first CJK font found (``VIGIL_CAPTION_FONT`` first); None when there is none."""
    named = os.environ.get(FONT_ENV)
    for candidate in ([named] if named else []) + list(CJK_FONTS):
        if Path(candidate).is_file():
            return Path(candidate)
    log.warning(
        "no CJK font found: alarm snapshot captions are written in English; install %s (make system-deps) "
        "or set %s to a .ttf/.ttc with Chinese glyphs",
        FONT_PACKAGES,
        FONT_ENV,
    )
    return None


@lru_cache(maxsize=8)
def _font(path: Path, size: int) -> Any:
    return ImageFont.truetype(str(path), size)


def scene_name(scene: str, lang: str) -> str:
    info = CATALOGUE.get(scene)
    if info is None:
        return scene
    return info.name_zh if lang == "zh" else info.name_en


class Caption:
    """Words and draws the caption of a site (its language and time zone)."""

    def __init__(self, lang: str = "zh", timezone: str = "Asia/Shanghai") -> None:
        self.zone = ZoneInfo(timezone)
        self.font_path = cjk_font_path() if lang == "zh" else None
        self.lang = lang if lang != "zh" or self.font_path is not None else "en"  # no CJK font: English

    def text(self, scene: str, region: str | None, at: float) -> str:
        local = dt.datetime.fromtimestamp(at, self.zone)
        where = region_text(region, self.lang)
        return f"{scene_name(scene, self.lang)} · {where} · {local:%Y-%m-%d %H:%M:%S %Z}"

    def draw(self, image: np.ndarray, scene: str, region: str | None, at: float) -> None:
        """Write the caption onto the bottom left of a BGR image, in place, on a dark band."""
        text = self.text(scene, region, at)
        height, width = image.shape[:2]
        size = max(12, min(32, height // 36))
        if self.font_path is None:  # OpenCV's font: ASCII only (the text is English then)
            ascii_text = text.replace("·", "-")
            scale = size / 30
            (tw, th), _ = cv2.getTextSize(ascii_text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
            cv2.rectangle(image, (0, height - th - 14), (min(width, tw + 16), height), (0, 0, 0), -1)
            cv2.putText(
                image,
                ascii_text,
                (8, height - 8),
                cv2.FONT_HERSHEY_SIMPLEX,
                scale,
                (255, 255, 255),
                1,
                cv2.LINE_AA,
            )
            return
        font = _font(self.font_path, size)
        left, top, right, bottom = font.getbbox(text)
        band = bottom - top + 10
        y0 = max(0, height - band)
        x1 = min(width, right - left + 16)
        # Only the band is converted to PIL and back: the rest of the frame is untouched.
        strip = image[y0:height, 0:x1]
        pil = Image.fromarray(cv2.cvtColor(strip, cv2.COLOR_BGR2RGB))
        shade = Image.new("RGB", pil.size, (0, 0, 0))
        pil = Image.blend(pil, shade, 0.6)
        ImageDraw.Draw(pil).text((8 - left, 5 - top), text, font=font, fill=(255, 255, 255))
        image[y0:height, 0:x1] = cv2.cvtColor(np.asarray(pil), cv2.COLOR_RGB2BGR)
