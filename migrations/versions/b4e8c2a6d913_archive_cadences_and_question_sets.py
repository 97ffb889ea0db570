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
    # A plain DROP COLUMN (SQLite 3.35+ and PostgreSQL): batch mode would copy
    # and drop question_sets, which the rows referencing it forbid on SQLite.
    for table in ('question_sets', 'cadences'):
        op.execute(f'ALTER TABLE {table} DROP COLUMN archived_at')
