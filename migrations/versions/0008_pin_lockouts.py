"""user_pins.lockouts: lockouts in a row since the last right PIN (each lasts twice the last)

Revision ID: 0008
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('user_pins', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lockouts', sa.Integer(), server_default='0', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('user_pins', schema=None) as batch_op:
        batch_op.drop_column('lockouts')
