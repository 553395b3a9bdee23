"""Delivery: the outbox, the canonical alarm record, alarm type codes, dispatch to uplink targets
and their wiring."""
