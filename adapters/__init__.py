"""Where video comes from: RTSP and files now; ONVIF and GB/T 28181 in their own packages."""

from adapters.frames import Frame, StreamHealth
from adapters.redact import redact_text, redact_url
from adapters.rtsp.source import RtspSource, StreamError

__all__ = ["Frame", "RtspSource", "StreamError", "StreamHealth", "redact_text", "redact_url"]
