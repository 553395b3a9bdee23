"""The service that wires adapters, analyzers and uplink: config, database, alarms, API, console, CLI."""
