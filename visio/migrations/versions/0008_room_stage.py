"""large meetings and webinars: whether attendees may publish, the size above which people
enter muted, and whether anyone may mute anyone

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    with op.batch_alter_table("rooms") as batch:
        batch.add_column(
            sa.Column("attendees_publish", sa.Boolean, nullable=False, server_default=sa.true())
        )
        batch.add_column(
            sa.Column("mute_on_entry_above", sa.Integer, nullable=False, server_default="10")
        )
        batch.add_column(
            sa.Column("everyone_can_mute", sa.Boolean, nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("rooms") as batch:
        batch.drop_column("everyone_can_mute")
        batch.drop_column("mute_on_entry_above")
        batch.drop_column("attendees_publish")
