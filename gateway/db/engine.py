"""Engine creation (SQLite in WAL mode, or PostgreSQL) and Alembic migrations."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from gateway.db.changes import watch


class SchemaOutdated(RuntimeError):
    """The database is not at the schema revision the code expects."""


MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def make_engine(url: str, echo: bool = False) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, echo=echo, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

    else:
        engine = create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=20)
    watch(engine)  # caches of alarm and auth answers learn of this process's writes (gateway/db/changes.py)
    return engine


def alembic_config(engine: Engine) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    command.upgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision(engine: Engine) -> str | None:
    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


class Database:
    """An engine plus a session factory; sessions are short and used from worker threads."""

    def __init__(self, url: str, echo: bool = False) -> None:
        self.engine = make_engine(url, echo)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed when the block ends, rolled back on any error."""
        with self._sessions() as session, session.begin():
            yield session

    def ensure_current(self) -> None:
        """Refuse to run against a database the migrations have not brought up to date."""
        current, head = current_revision(self.engine), head_revision(self.engine)
        if current != head:
            raise SchemaOutdated(
                f"database is at revision {current or 'empty'}, code expects {head}: run `vigil db upgrade`"
            )

    def dispose(self) -> None:
        self.engine.dispose()
