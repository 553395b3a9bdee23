"""Where alarms go: the outbox dispatchers and targets (http, gb28181 cascade, mqtt, websocket).

The spine stores outbox rows; dispatchers and targets arrive with the uplink issue.
"""

from uplink.records import UplinkMessage

__all__ = ["UplinkMessage"]
