"""server-side record of staff sessions, so sign-out and deactivation end them

Revision ID: d13a5e55105f
Revises: 8d4b6c2e1f07
Create Date: 2026-12-01 12:10:00

"""
from alembic import op
import sqlalchemy as sa

from surveys.extensions import UTCDateTime


# revision identifiers, used by Alembic.
revision = 'd13a5e55105f'
down_revision = '8d4b6c2e1f07'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'staff_sessions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('person_id', sa.Integer(), nullable=False),
        sa.Column('sid_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('ended_at', UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_staff_sessions_person_id_people'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_sessions')),
        sa.UniqueConstraint('sid_hash', name=op.f('uq_staff_sessions_sid_hash')),
    )
    with op.batch_alter_table('staff_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_sessions_person_id'), ['person_id'], unique=False)


def downgrade():
    with op.batch_alter_table('staff_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_sessions_person_id'))
    op.drop_table('staff_sessions')
