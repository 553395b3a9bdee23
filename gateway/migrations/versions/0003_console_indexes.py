"""console indexes: alarms by time (covering the statistics' columns) and by scene and time; first disposal

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 00:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Statistics and lists select alarms by occurrence time and read only these columns: with all of them
# in the index, neither database reads the (wide: message, details, tags) table rows.
COVER = ["occurred_at", "scene", "camera_id", "region", "status", "verdict"]
COVER += ["raised_at", "confirmed_at", "cleared_at", "id"]


def upgrade() -> None:
    with op.batch_alter_table("alarms") as batch:
        batch.create_index("ix_alarms_scene_occurred", ["scene", "occurred_at"], unique=False)
        batch.create_index("ix_alarms_occurred_cover", COVER, unique=False)
    with op.batch_alter_table("alarm_disposals") as batch:
        batch.create_index("ix_alarm_disposals_alarm_handled", ["alarm_id", "handled_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("alarm_disposals") as batch:
        batch.drop_index("ix_alarm_disposals_alarm_handled")
    with op.batch_alter_table("alarms") as batch:
        batch.drop_index("ix_alarms_occurred_cover")
        batch.drop_index("ix_alarms_scene_occurred")
