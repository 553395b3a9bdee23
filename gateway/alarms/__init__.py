"""Alarms: the recorder (one writer), lifecycle (confirm, dispose, clear, close), clips, retention."""
