"""keep a finalized round's raw aggregates with its scorecard

Revision ID: 5f1e2a7c9b31
Revises: c333e06799e2
Create Date: 2026-11-29 08:20:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5f1e2a7c9b31'
down_revision = 'c333e06799e2'
branch_labels = None
depends_on = None


def upgrade():
    # Nullable: snapshots finalized before this column existed have none, and
    # their rounds are read live when a later round compares with them.
    with op.batch_alter_table('scorecard_snapshots', schema=None) as batch_op:
        batch_op.add_column(sa.Column('aggregates', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('scorecard_snapshots', schema=None) as batch_op:
        batch_op.drop_column('aggregates')
