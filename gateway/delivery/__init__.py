"""Delivery: the outbox, the canonical alarm record, dispatch to uplink targets and their wiring."""
