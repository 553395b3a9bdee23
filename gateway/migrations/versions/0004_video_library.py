"""video library and analysis jobs: kept uploads, upload and history-replay jobs that survive a restart

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "videos",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("camera_id", sa.String(length=64), nullable=False),
        sa.Column("started_at", UTC_TIME, nullable=False),
        sa.Column("ended_at", UTC_TIME, nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("frames", sa.Integer(), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("codec", sa.String(length=32), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("path", sa.String(length=255), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("uploaded_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("retain_until", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_videos")),
        sa.UniqueConstraint("sha256", "camera_id", "started_at", name="uq_videos_sha256_camera_start"),
    )
    with op.batch_alter_table("videos") as batch:
        batch.create_index("ix_videos_camera_started", ["camera_id", "started_at"], unique=False)
        batch.create_index("ix_videos_started_ended", ["started_at", "ended_at"], unique=False)
        batch.create_index(batch.f("ix_videos_sha256"), ["sha256"], unique=False)

    op.create_table(
        "analysis_jobs",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("camera_ids", sa.JSON(), nullable=False),
        sa.Column("since", UTC_TIME, nullable=True),
        sa.Column("until", UTC_TIME, nullable=True),
        sa.Column("scenes", sa.JSON(), nullable=True),
        sa.Column("model", sa.String(length=120), nullable=True),
        sa.Column("model_version_id", sa.String(length=26), nullable=True),
        sa.Column("frames_done", sa.Integer(), nullable=False),
        sa.Column("frames_total", sa.Integer(), nullable=True),
        sa.Column("alarm_count", sa.Integer(), nullable=False),
        sa.Column("notes", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("started_at", UTC_TIME, nullable=True),
        sa.Column("finished_at", UTC_TIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_versions.id"],
            name=op.f("fk_analysis_jobs_model_version_id_model_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analysis_jobs")),
    )
    with op.batch_alter_table("analysis_jobs") as batch:
        batch.create_index("ix_analysis_jobs_status", ["status"], unique=False)

    op.create_table(
        "analysis_job_videos",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("job_id", sa.String(length=26), nullable=False),
        sa.Column("video_id", sa.String(length=26), nullable=True),
        sa.Column("camera_id", sa.String(length=64), nullable=False),
        sa.Column("from_s", sa.Float(), nullable=False),
        sa.Column("to_s", sa.Float(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("frames", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=True),
        sa.Column("alarm_count", sa.Integer(), nullable=False),
        sa.Column("alarm_ids", sa.JSON(), nullable=False),
        sa.Column("model_versions", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["analysis_jobs.id"],
            name=op.f("fk_analysis_job_videos_job_id_analysis_jobs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["video_id"],
            ["videos.id"],
            name=op.f("fk_analysis_job_videos_video_id_videos"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analysis_job_videos")),
    )
    with op.batch_alter_table("analysis_job_videos") as batch:
        batch.create_index(batch.f("ix_analysis_job_videos_job_id"), ["job_id"], unique=False)
        batch.create_index(batch.f("ix_analysis_job_videos_video_id"), ["video_id"], unique=False)


def downgrade() -> None:
    op.drop_table("analysis_job_videos")
    op.drop_table("analysis_jobs")
    op.drop_table("videos")
