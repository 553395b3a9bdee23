"""GB/T 28181 wiring: the SIP roles, device registry and channel players of the gateway."""
