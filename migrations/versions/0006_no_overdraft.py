"""ledger: no wallet below zero, as a constraint of the accounts table

The rule core.ledger always kept (a wallet goes below zero only if it may), now held by
the database itself, so a balance move can travel with the rest of a transaction's
writes and still be refused on the current row.

Revision ID: 0006
Revises: 0005
"""
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.create_check_constraint(op.f('ck_accounts_no_overdraft'), 'balance >= 0 OR may_go_negative')


def downgrade() -> None:
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_accounts_no_overdraft'), type_='check')
