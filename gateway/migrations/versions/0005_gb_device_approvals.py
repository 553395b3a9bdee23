"""GB/T 28181 device approvals: held devices admitted (as digest HA1) or refused survive a restart

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 02:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "gb_device_approvals",
        sa.Column("device_id", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("realm", sa.String(length=64), nullable=False),
        sa.Column("ha1", sa.String(length=32), nullable=True),
        sa.Column("decided_by", sa.String(length=100), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("device_id", name=op.f("pk_gb_device_approvals")),
    )


def downgrade() -> None:
    op.drop_table("gb_device_approvals")
