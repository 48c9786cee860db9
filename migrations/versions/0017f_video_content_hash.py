"""videos.content_hash: sha256 of the uploaded bytes, unique per creator (an exact re-upload is refused)

Revision ID: 0017f
Revises: 0012a
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0017f"
down_revision: str | None = "0012a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("videos", schema=None) as batch_op:
        batch_op.add_column(sa.Column("content_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.create_index("uq_videos_creator_content_hash", ["creator_id", "content_hash"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("videos", schema=None) as batch_op:
        batch_op.drop_index("uq_videos_creator_content_hash")
        batch_op.drop_column("content_hash")
