"""Production units (装置) and their run states: the store with its audit trail, and the plant systems
that set them (MQTT subscriber, optional OPC UA client; the HTTP API is gateway/api/units.py)."""
