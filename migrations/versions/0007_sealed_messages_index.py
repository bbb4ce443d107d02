"""outbound messages: a partial index on the rows still holding a sealed text

The sweep that wipes delivered copies ran every second over every delivered message
(they all have next_attempt_at NULL); it now reads only the few still sealed.

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbound_messages', schema=None) as batch_op:
        batch_op.create_index('ix_outbound_messages_sealed', ['created_at'], unique=False,
                              postgresql_where=sa.text('sealed_body IS NOT NULL'),
                              sqlite_where=sa.text('sealed_body IS NOT NULL'))


def downgrade() -> None:
    with op.batch_alter_table('outbound_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_outbound_messages_sealed')
