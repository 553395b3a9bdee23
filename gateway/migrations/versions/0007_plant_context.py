"""Plant context: production units with their run state and audit trail, cameras' plant settings

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 21:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cameras") as batch:
        batch.add_column(sa.Column("plant_settings", sa.JSON(), nullable=False, server_default="{}"))
    op.create_table(
        "units",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("state_since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_by", sa.String(length=100), nullable=False),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_units")),
    )
    op.create_table(
        "unit_audit",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("unit_id", sa.String(length=64), nullable=False),
        sa.Column("old_state", sa.String(length=16), nullable=True),
        sa.Column("new_state", sa.String(length=16), nullable=True),
        sa.Column("camera_id", sa.String(length=64), nullable=True),
        sa.Column("scene", sa.String(length=32), nullable=True),
        sa.Column("region", sa.String(length=200), nullable=True),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unit_audit")),
    )
    op.create_index(op.f("ix_unit_audit_at"), "unit_audit", ["at"])
    op.create_index(op.f("ix_unit_audit_unit_id"), "unit_audit", ["unit_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_unit_audit_unit_id"), table_name="unit_audit")
    op.drop_index(op.f("ix_unit_audit_at"), table_name="unit_audit")
    op.drop_table("unit_audit")
    op.drop_table("units")
    with op.batch_alter_table("cameras") as batch:
        batch.drop_column("plant_settings")
