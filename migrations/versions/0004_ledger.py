"""ledger: accounts, journal entries, postings, transfers, deposits, events

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

import core.db  # noqa: F401

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('accounts',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('owner_type', sa.String(length=10), nullable=False),
    sa.Column('owner_id', sa.String(length=40), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('livemode', sa.Boolean(), nullable=False),
    sa.Column('balance', sa.BigInteger(), nullable=False),
    sa.Column('may_go_negative', sa.Boolean(), nullable=False),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_accounts')),
    sa.UniqueConstraint('owner_type', 'owner_id', 'currency', 'livemode', name=op.f('uq_accounts_owner_type'))
    )
    op.create_table('deposits',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('user_id', sa.String(length=40), nullable=False),
    sa.Column('livemode', sa.Boolean(), nullable=False),
    sa.Column('method', sa.String(length=20), nullable=False),
    sa.Column('phone_number', sa.String(length=20), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('failure_code', sa.String(length=40), nullable=True),
    sa.Column('failure_message', sa.String(length=200), nullable=True),
    sa.Column('started_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('next_check_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('settled_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deposits'))
    )
    with op.batch_alter_table('deposits', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_deposits_next_check_at'), ['next_check_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_deposits_user_id'), ['user_id'], unique=False)

    op.create_table('events',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('type', sa.String(length=40), nullable=False),
    sa.Column('livemode', sa.Boolean(), nullable=False),
    sa.Column('merchant_id', sa.String(length=40), nullable=True),
    sa.Column('object_type', sa.String(length=20), nullable=False),
    sa.Column('object_id', sa.String(length=40), nullable=False),
    sa.Column('data', sa.Text(), nullable=False),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_events'))
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index('ix_events_merchant', ['merchant_id', 'livemode', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_events_object_id'), ['object_id'], unique=False)

    op.create_table('journal_entries',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('obj_type', sa.String(length=20), nullable=False),
    sa.Column('obj_id', sa.String(length=40), nullable=False),
    sa.Column('livemode', sa.Boolean(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('memo', sa.String(length=500), nullable=False),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_journal_entries'))
    )
    with op.batch_alter_table('journal_entries', schema=None) as batch_op:
        batch_op.create_index('ix_journal_entries_object', ['obj_type', 'obj_id'], unique=False)

    op.create_table('transfers',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('livemode', sa.Boolean(), nullable=False),
    sa.Column('sender_type', sa.String(length=10), nullable=False),
    sa.Column('sender_id', sa.String(length=40), nullable=False),
    sa.Column('sender_wallet_id', sa.String(length=40), nullable=False),
    sa.Column('to_phone_number', sa.String(length=20), nullable=False),
    sa.Column('recipient_user_id', sa.String(length=40), nullable=True),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('note', sa.String(length=200), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('claim_code_hash', sa.String(length=64), nullable=True),
    sa.Column('claim_expires_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('auto_claim_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('succeeded_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('claimed_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('expired_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_transfers')),
    sa.UniqueConstraint('claim_code_hash', name=op.f('uq_transfers_claim_code_hash'))
    )
    with op.batch_alter_table('transfers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_transfers_auto_claim_at'), ['auto_claim_at'], unique=False)
        batch_op.create_index('ix_transfers_pending', ['status', 'claim_expires_at'], unique=False)
        batch_op.create_index('ix_transfers_sender', ['sender_type', 'sender_id', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_transfers_to_phone_number'), ['to_phone_number'], unique=False)

    op.create_table('postings',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('entry_id', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('balance_after', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('obj_type', sa.String(length=20), nullable=False),
    sa.Column('obj_id', sa.String(length=40), nullable=False),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_postings_account_id_accounts')),
    sa.ForeignKeyConstraint(['entry_id'], ['journal_entries.id'], name=op.f('fk_postings_entry_id_journal_entries')),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_postings')),
    sa.UniqueConstraint('id', name=op.f('uq_postings_id'))
    )
    with op.batch_alter_table('postings', schema=None) as batch_op:
        batch_op.create_index('ix_postings_account_seq', ['account_id', 'seq'], unique=False)
        batch_op.create_index(batch_op.f('ix_postings_entry_id'), ['entry_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('postings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_postings_entry_id'))
        batch_op.drop_index('ix_postings_account_seq')

    op.drop_table('postings')
    with op.batch_alter_table('transfers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_transfers_to_phone_number'))
        batch_op.drop_index('ix_transfers_sender')
        batch_op.drop_index('ix_transfers_pending')
        batch_op.drop_index(batch_op.f('ix_transfers_auto_claim_at'))

    op.drop_table('transfers')
    with op.batch_alter_table('journal_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_journal_entries_object')

    op.drop_table('journal_entries')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_events_object_id'))
        batch_op.drop_index('ix_events_merchant')

    op.drop_table('events')
    with op.batch_alter_table('deposits', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deposits_user_id'))
        batch_op.drop_index(batch_op.f('ix_deposits_next_check_at'))

    op.drop_table('deposits')
    op.drop_table('accounts')
