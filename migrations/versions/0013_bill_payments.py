"""bill_payments: bills paid to LEC and LWSC over TIMM, and their settlement

Revision ID: 0013
Revises: 0012
"""
import sqlalchemy as sa
from alembic import op

import core.db

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('bill_payments',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('livemode', sa.Boolean(), nullable=False),
    sa.Column('payer_type', sa.String(length=10), nullable=False),
    sa.Column('payer_id', sa.String(length=40), nullable=False),
    sa.Column('wallet_id', sa.String(length=40), nullable=False),
    sa.Column('biller', sa.String(length=20), nullable=False),
    sa.Column('account_number', sa.String(length=40), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('token', sa.String(length=40), nullable=True),
    sa.Column('units', sa.String(length=40), nullable=True),
    sa.Column('failure_code', sa.String(length=40), nullable=True),
    sa.Column('failure_message', sa.String(length=200), nullable=True),
    sa.Column('submitted_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('status_checks', sa.Integer(), nullable=False),
    sa.Column('next_check_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('settled_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bill_payments'))
    )
    op.create_index('ix_bill_payments_due', 'bill_payments', ['status', 'next_check_at'], unique=False)
    op.create_index('ix_bill_payments_payer', 'bill_payments', ['payer_type', 'payer_id', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_bill_payments_payer', table_name='bill_payments')
    op.drop_index('ix_bill_payments_due', table_name='bill_payments')
    op.drop_table('bill_payments')
