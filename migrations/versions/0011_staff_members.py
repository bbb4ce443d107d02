"""staff_members: who may use the support console, by phone, as agent or lead

Revision ID: 0011
Revises: 0010
"""
import sqlalchemy as sa
from alembic import op

import core.db

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('staff_members',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('phone_number', sa.String(length=20), nullable=False),
    sa.Column('role', sa.String(length=10), nullable=False),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("role IN ('agent', 'lead')", name=op.f('ck_staff_members_role')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_members')),
    sa.UniqueConstraint('phone_number', name=op.f('uq_staff_members_phone_number'))
    )


def downgrade() -> None:
    op.drop_table('staff_members')
