"""alarms by status and source: the overview's count of open live alarms reads only this index

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 22:45:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Without it SQLite counts the open live alarms by reading every live alarm's row (91 ms at
    # 200,000 alarms; 10 ms with it): the home page asks for this count every time.
    with op.batch_alter_table("alarms") as batch:
        batch.create_index("ix_alarms_status_source", ["status", "source"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("alarms") as batch:
        batch.drop_index("ix_alarms_status_source")
