"""Scenes: alarm messages, region names the gateway makes up, parameter labels."""

TEXT: dict[str, dict[str, str]] = {}
