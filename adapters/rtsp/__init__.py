"""RTSP and file ingest, and a sample RTSP camera for demos and tests."""
