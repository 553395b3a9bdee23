"""Captions burned into alarm snapshots: the site's language and time zone, real CJK glyphs from the
packaged font, and English (never boxes) when no CJK font is installed."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from gateway.i18n import caption as caption_module
from gateway.i18n.caption import Caption, cjk_font_path

AT = dt.datetime(2026, 12, 7, 13, 40, 5, tzinfo=dt.UTC).timestamp()


def frame() -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.integers(60, 120, (576, 768, 3), dtype=np.uint8)


def test_chinese_caption_in_the_site_zone() -> None:
    if cjk_font_path() is None:
        pytest.fail("no CJK font: run `make system-deps` (fonts-wqy-zenhei)")
    text = Caption("zh", "Asia/Shanghai").text("intrusion", "lawn-east", AT)
    assert text == "区域入侵 · lawn-east · 2026-12-07 21:40:05 CST"
    assert Caption("zh", "Asia/Shanghai").text("crowd", "frame", AT).startswith("人员聚集 · 全画面 · ")
    assert (
        Caption("en", "Europe/Berlin").text("intrusion", "lawn-east", AT).endswith("2026-12-07 14:40:05 CET")
    )


def test_the_font_draws_real_glyphs_only_in_the_caption_band() -> None:
    path = cjk_font_path()
    assert path is not None
    font = caption_module._font(path, 24)
    # A font without Chinese draws the same "missing glyph" box for every character.
    assert bytes(font.getmask("区")) != bytes(font.getmask("域"))
    image = frame()
    before = image.copy()
    Caption("zh", "Asia/Shanghai").draw(image, "intrusion", "lawn-east", AT)
    changed = np.argwhere((image != before).any(axis=2))
    assert len(changed) > 500
    assert changed[:, 0].min() > 576 - 40, "only the band at the bottom is written"


def test_without_a_cjk_font_the_caption_is_english(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(caption_module, "CJK_FONTS", ())
    monkeypatch.setenv(caption_module.FONT_ENV, str(tmp_path / "missing.ttc"))
    cjk_font_path.cache_clear()
    try:
        fallback = Caption("zh", "Asia/Shanghai")
        assert fallback.font_path is None and fallback.lang == "en"
        text = fallback.text("intrusion", "lawn-east", AT)
        assert text.startswith("zone intrusion · lawn-east · 2026-12-07 21:40:05")
        image = frame()
        before = image.copy()
        fallback.draw(image, "intrusion", "lawn-east", AT)
        assert (image != before).any()
    finally:
        cjk_font_path.cache_clear()
