"""when a worker claimed a deal event, so the tick re-queues one a dead worker left in processing

Revision ID: a3c9e1d5b7f2
Revises: e15d3a1f0c27
Create Date: 2026-12-01 15:20:00

"""
from alembic import op
import sqlalchemy as sa

from surveys.extensions import UTCDateTime


# revision identifiers, used by Alembic.
revision = 'a3c9e1d5b7f2'
down_revision = 'e15d3a1f0c27'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('deal_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_at', UTCDateTime(), nullable=True))
    # Events already left in processing have no claim time: their arrival
    # stands in for it, so the tick re-queues them too.
    op.execute("UPDATE deal_events SET claimed_at = received_at WHERE status = 'processing'")


def downgrade():
    with op.batch_alter_table('deal_events', schema=None) as batch_op:
        batch_op.drop_column('claimed_at')
