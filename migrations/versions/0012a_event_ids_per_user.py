"""event ids unique per user: the dedup key of the event log is (user_id, event_id)

Revision ID: 0012a
Revises: 0015a
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012a"
down_revision: str | None = "0015a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite keeps the original UNIQUE(event_id) unnamed; a naming convention lets batch mode find and drop it.
SQLITE_NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _drop_global_unique(batch_op, dialect: str) -> None:  # noqa: ANN001
    batch_op.drop_constraint("uq_events_event_id" if dialect == "sqlite" else "events_event_id_key", type_="unique")


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    options = {"naming_convention": SQLITE_NAMES} if dialect == "sqlite" else {}
    with op.batch_alter_table("events", schema=None, **options) as batch_op:
        _drop_global_unique(batch_op, dialect)
        batch_op.create_unique_constraint("uq_events_user_event", ["user_id", "event_id"])
        batch_op.create_index(batch_op.f("ix_events_event_id"), ["event_id"], unique=False)


def downgrade() -> None:
    # Only possible while no id is shared by two users.
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_events_event_id"))
        batch_op.drop_constraint("uq_events_user_event", type_="unique")
        batch_op.create_unique_constraint("uq_events_event_id", ["event_id"])
