"""The HTTP API, the console's static files, and the OpenAPI document."""

from gateway.api.app import create_app

__all__ = ["create_app"]
