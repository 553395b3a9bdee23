"""alarm lifecycle: camera alarm settings, gateway alarms without a camera, disposal photos, target health

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 23:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cameras") as batch:
        batch.add_column(sa.Column("alarm_settings", sa.JSON(), nullable=False, server_default="{}"))
    with op.batch_alter_table("alarms") as batch:
        batch.alter_column("camera_id", existing_type=sa.String(length=64), nullable=True)
    with op.batch_alter_table("alarm_disposals") as batch:
        batch.add_column(sa.Column("photos", sa.JSON(), nullable=False, server_default="[]"))
    with op.batch_alter_table("uplink_targets") as batch:
        batch.add_column(sa.Column("last_error", sa.Text(), nullable=True))
        batch.add_column(sa.Column("last_delivered_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("uplink_targets") as batch:
        batch.drop_column("last_delivered_at")
        batch.drop_column("last_error")
    with op.batch_alter_table("alarm_disposals") as batch:
        batch.drop_column("photos")
    with op.batch_alter_table("alarms") as batch:
        batch.alter_column("camera_id", existing_type=sa.String(length=64), nullable=False)
    with op.batch_alter_table("cameras") as batch:
        batch.drop_column("alarm_settings")
