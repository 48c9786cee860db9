"""recommender snapshots: periodic-job outputs published for web replicas

Revision ID: 0015b
Revises: 0016a
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0015b"
down_revision: str | None = "0016a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "recommender_snapshots",
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("job", sqlmodel.sql.sqltypes.AutoString(length=48), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("blob", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("version"),
    )
    op.create_index("ix_recommender_snapshots_job_version", "recommender_snapshots", ["job", "version"])


def downgrade() -> None:
    op.drop_index("ix_recommender_snapshots_job_version", table_name="recommender_snapshots")
    op.drop_table("recommender_snapshots")
