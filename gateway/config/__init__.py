"""The typed configuration (pydantic): one source of truth for YAML, environment and schema."""
