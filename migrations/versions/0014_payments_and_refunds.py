"""payments and refunds: PaymentIntents (the refunds total held within the amount by a CHECK) and their refunds

Revision ID: 0014
Revises: 0013
"""
import sqlalchemy as sa
from alembic import op

import core.db

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('payments',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('merchant_id', sa.String(length=40), nullable=False),
    sa.Column('livemode', sa.Boolean(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('description', sa.String(length=500), nullable=True),
    sa.Column('metadata', sa.Text(), nullable=True),
    sa.Column('customer_phone', sa.String(length=20), nullable=True),
    sa.Column('status', sa.String(length=30), nullable=False),
    sa.Column('client_secret_hash', sa.String(length=64), nullable=False),
    sa.Column('method', sa.String(length=20), nullable=True),
    sa.Column('payer_phone', sa.String(length=20), nullable=True),
    sa.Column('payer_user_id', sa.String(length=40), nullable=True),
    sa.Column('card_brand', sa.String(length=20), nullable=True),
    sa.Column('card_last4', sa.String(length=4), nullable=True),
    sa.Column('fee', sa.BigInteger(), nullable=True),
    sa.Column('amount_refunded', sa.BigInteger(), nullable=False),
    sa.Column('fee_refunded', sa.BigInteger(), nullable=False),
    sa.Column('next_action', sa.String(length=30), nullable=True),
    sa.Column('action_expires_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('approval_asked_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('started_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('next_check_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error_code', sa.String(length=40), nullable=True),
    sa.Column('last_error_message', sa.String(length=200), nullable=True),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('succeeded_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('canceled_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('failed_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint('amount_refunded >= 0 AND amount_refunded <= amount', name=op.f('ck_payments_refunds_within_amount')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payments'))
    )
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.create_index('ix_payments_merchant', ['merchant_id', 'livemode', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_payments_next_check_at'), ['next_check_at'], unique=False)
        batch_op.create_index('ix_payments_payer', ['payer_phone', 'status'], unique=False)

    op.create_table('refunds',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('payment_id', sa.String(length=40), nullable=False),
    sa.Column('merchant_id', sa.String(length=40), nullable=False),
    sa.Column('livemode', sa.Boolean(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('fee_returned', sa.BigInteger(), nullable=False),
    sa.Column('method', sa.String(length=20), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('failure_code', sa.String(length=40), nullable=True),
    sa.Column('failure_message', sa.String(length=200), nullable=True),
    sa.Column('started_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('next_check_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('settled_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_refunds'))
    )
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_refunds_next_check_at'), ['next_check_at'], unique=False)
        batch_op.create_index('ix_refunds_payment', ['payment_id', 'id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.drop_index('ix_refunds_payment')
        batch_op.drop_index(batch_op.f('ix_refunds_next_check_at'))

    op.drop_table('refunds')
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_index('ix_payments_payer')
        batch_op.drop_index(batch_op.f('ix_payments_next_check_at'))
        batch_op.drop_index('ix_payments_merchant')

    op.drop_table('payments')
