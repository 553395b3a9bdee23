"""Cameras: the registry, per-camera analysis runners, sample capture, ONVIF events, discovery."""
