"""indexes for the tick's requeue checks: deliveries by status and enqueued_at, and by status and claimed_at

Revision ID: d2b6e8a4c1f7
Revises: c5a1d7e3f9b2
Create Date: 2026-12-01 23:40:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'd2b6e8a4c1f7'
down_revision = 'c5a1d7e3f9b2'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_deliveries_status_enqueued_at', 'deliveries', ['status', 'enqueued_at'], unique=False)
    op.create_index('ix_deliveries_status_claimed_at', 'deliveries', ['status', 'claimed_at'], unique=False)


def downgrade():
    op.drop_index('ix_deliveries_status_claimed_at', table_name='deliveries')
    op.drop_index('ix_deliveries_status_enqueued_at', table_name='deliveries')
