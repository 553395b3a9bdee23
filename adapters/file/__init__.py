"""Offline video files: decoded once, as fast as FFmpeg goes, into the adapters' Frame records."""

from adapters.file.source import FileSource, FileSourceError, open_video, total_frames

__all__ = ["FileSource", "FileSourceError", "open_video", "total_frames"]
