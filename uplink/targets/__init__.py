"""Uplink targets: one file per kind of upstream (http, mqtt, websocket, gb28181)."""
