"""Real servers the tests talk to: PostgreSQL (and the sample RTSP camera in adapters.rtsp)."""
