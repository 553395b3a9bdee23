"""adapters/file/source.py: a video file decoded once into sampled Frame records with video times."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from adapters.file import FileSource, FileSourceError


def test_vtest_at_one_frame_per_second(vtest: Path) -> None:
    with FileSource(vtest, "cam", start=1000.0, sample_fps=1.0) as source:
        assert source.total_frames == 795  # 79.5 s at 10 fps
        frames = list(source.frames())
    assert len(frames) == 80
    assert [f.pts for f in frames] == pytest.approx([float(i) for i in range(80)])
    assert [f.ts for f in frames] == pytest.approx([1000.0 + i for i in range(80)])
    assert {f.camera_id for f in frames} == {"cam"}
    assert frames[0].image.shape == (576, 768, 3) and frames[0].keyframe
    assert source.decoded == 795 and source.end_s == pytest.approx(79.5)


def test_offset_limit_due_and_stop(vtest: Path) -> None:
    with FileSource(vtest, "cam", sample_fps=1.0, offset_s=10.0, max_seconds=20.0) as source:
        seen: list[int] = []
        frames = list(source.frames(due=lambda ts: ts >= 15.0, on_decoded=seen.append))
    assert [f.ts for f in frames] == pytest.approx([15.0 + i for i in range(5)])
    assert seen == list(range(1, 101)) and source.end_s == pytest.approx(20.0)
    stop = threading.Event()
    stop.set()
    with FileSource(vtest, "cam") as source:
        assert list(source.frames(stop=stop)) == [] and source.cancelled


def test_not_a_video_is_a_clear_error(tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n" * 20)
    with pytest.raises(FileSourceError, match="notes.mp4 is not a video"):
        FileSource(text, "cam")
    with pytest.raises(FileSourceError, match="video file not found"):
        FileSource(tmp_path / "missing.mp4", "cam")
