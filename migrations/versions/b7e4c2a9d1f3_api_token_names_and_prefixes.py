"""API tokens carry the name their owner gave them and their visible prefix

Revision ID: b7e4c2a9d1f3
Revises: a3c9e1d5b7f2
Create Date: 2026-12-01 18:50:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b7e4c2a9d1f3'
down_revision = 'a3c9e1d5b7f2'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('name', sa.String(length=80), nullable=False, server_default='API token'))
        # Tokens made before this have no known prefix: only their hash was kept.
        batch_op.add_column(sa.Column('prefix', sa.String(length=16), nullable=True))


def downgrade():
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_column('prefix')
        batch_op.drop_column('name')
