"""Alarms: the recorder (one writer), lifecycle, evidence store, clips, retention, alarm type codes."""
