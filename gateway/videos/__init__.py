"""Offline video: import into the library, the library itself and history replay."""
