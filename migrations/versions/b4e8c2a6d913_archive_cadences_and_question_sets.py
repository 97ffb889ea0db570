"""archived_at on cadences and question sets: an archived one leaves the lists and keeps its history

Revision ID: b4e8c2a6d913
Revises: b7e4c2a9d1f3
Create Date: 2026-12-01 18:50:00

"""
from alembic import op
import sqlalchemy as sa

from surveys.extensions import UTCDateTime


# revision identifiers, used by Alembic.
revision = 'b4e8c2a6d913'
down_revision = 'b7e4c2a9d1f3'
branch_labels = None
depends_on = None


def upgrade():
    for table in ('cadences', 'question_sets'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('archived_at', UTCDateTime(), nullable=True))


def downgrade():
    for table in ('question_sets', 'cadences'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('archived_at')
