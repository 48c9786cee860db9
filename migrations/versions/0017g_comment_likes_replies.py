"""comment likes and one level of replies: comment_likes table, comments.parent_id

Revision ID: 0017g
Revises: 0017f
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0017g"
down_revision: str | None = "0017f"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("comments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parent_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_comments_parent_id"), ["parent_id"], unique=False)
        batch_op.create_foreign_key("fk_comments_parent_id_comments", "comments", ["parent_id"], ["id"],
                                    ondelete="CASCADE")
    op.create_table(
        "comment_likes",
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("comment_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["comment_id"], ["comments.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "comment_id"),
    )
    with op.batch_alter_table("comment_likes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_comment_likes_comment_id"), ["comment_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("comment_likes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_comment_likes_comment_id"))
    op.drop_table("comment_likes")
    with op.batch_alter_table("comments", schema=None) as batch_op:
        batch_op.drop_constraint("fk_comments_parent_id_comments", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_comments_parent_id"))
        batch_op.drop_column("parent_id")
