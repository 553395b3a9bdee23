"""alarm quality: where an alarm comes from (live camera or an offline video job), flood alarms, repeats
merged into an alarm, escalation level

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 21:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("alarms") as batch:
        batch.add_column(sa.Column("source", sa.String(length=16), nullable=False, server_default="live"))
        batch.add_column(sa.Column("video_job_id", sa.String(length=26), nullable=True))
        batch.add_column(sa.Column("kind", sa.String(length=16), nullable=False, server_default="event"))
        batch.add_column(sa.Column("repeats", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("last_repeat_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("escalation_level", sa.Integer(), nullable=False, server_default="0"))
        batch.create_index("ix_alarms_video_job_ts", ["video_job_id", "video_ts"])
        batch.create_index("ix_alarms_source_occurred", ["source", "occurred_at"])
    # Alarms of offline videos so far: their event key is "video:<job id>/<camera>/<scene>/<key>".
    op.execute(
        "UPDATE alarms SET source = 'video', video_job_id = substr(event_key, 7, 26) "
        "WHERE event_key LIKE 'video:%'"
    )


def downgrade() -> None:
    with op.batch_alter_table("alarms") as batch:
        batch.drop_index("ix_alarms_source_occurred")
        batch.drop_index("ix_alarms_video_job_ts")
        batch.drop_column("escalation_level")
        batch.drop_column("last_repeat_at")
        batch.drop_column("repeats")
        batch.drop_column("kind")
        batch.drop_column("video_job_id")
        batch.drop_column("source")
