"""Persistence: schema, engine and migrations, and the content-addressed file stores beside the database
(files.py: evidence, samples, videos)."""

from gateway.db.engine import Database, SchemaOutdated, current_revision, head_revision, make_engine, upgrade
from gateway.db.schema import Base

__all__ = [
    "Base",
    "Database",
    "SchemaOutdated",
    "current_revision",
    "head_revision",
    "make_engine",
    "upgrade",
]
