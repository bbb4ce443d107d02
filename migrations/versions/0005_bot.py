"""bot: conversations (dialog state per phone) and inbound messages (masked, unique MessageSid)

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

import core.db  # noqa: F401

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('conversations',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('phone_number', sa.String(length=20), nullable=False),
    sa.Column('user_id', sa.String(length=40), nullable=True),
    sa.Column('state', sa.String(length=40), nullable=False),
    sa.Column('data', sa.Text(), nullable=False),
    sa.Column('session_expires_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_inbound_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_conversations_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_conversations')),
    sa.UniqueConstraint('phone_number', name=op.f('uq_conversations_phone_number'))
    )
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_conversations_user_id'), ['user_id'], unique=False)

    op.create_table('inbound_messages',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('conversation_id', sa.String(length=40), nullable=False),
    sa.Column('message_sid', sa.String(length=64), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], name=op.f('fk_inbound_messages_conversation_id_conversations')),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_inbound_messages')),
    sa.UniqueConstraint('message_sid', name=op.f('uq_inbound_messages_message_sid'))
    )
    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.create_index('ix_inbound_messages_conversation', ['conversation_id', 'seq'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_inbound_messages_conversation')
    op.drop_table('inbound_messages')
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_conversations_user_id'))
    op.drop_table('conversations')
