"""step_up_tokens.session_id and pin_version: a step-up token serves only its session, and
only while the PIN it confirmed is the PIN

Revision ID: 0010
Revises: 0009
"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Tokens last five minutes: the few outstanding ones are ended (a new step-up is one
    # PIN away) rather than given a session they cannot be traced to.
    op.execute("DELETE FROM step_up_tokens")
    with op.batch_alter_table('step_up_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_id', sa.String(length=40), nullable=False))
        batch_op.add_column(sa.Column('pin_version', sa.Integer(), nullable=False))
        batch_op.create_foreign_key(batch_op.f('fk_step_up_tokens_session_id_user_sessions'),
                                    'user_sessions', ['session_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('step_up_tokens', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_step_up_tokens_session_id_user_sessions'), type_='foreignkey')
        batch_op.drop_column('pin_version')
        batch_op.drop_column('session_id')
