"""answers keep a copy of their invitation's slice (team, region, segment)

Revision ID: 8d4b6c2e1f07
Revises: 5f1e2a7c9b31
Create Date: 2026-11-29 08:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '8d4b6c2e1f07'
down_revision = '5f1e2a7c9b31'
branch_labels = None
depends_on = None

_FROM_INVITATION = (
    "(SELECT invitations.{column} FROM responses JOIN invitations ON invitations.id = responses.invitation_id"
    " WHERE responses.id = answers.response_id)"
)


def upgrade():
    with op.batch_alter_table('answers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('team_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('region', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('segment', sa.String(length=100), nullable=True))
    # Answers stored before this revision get the same copy new ones do.
    op.execute(
        "UPDATE answers SET "
        + ", ".join(f"{column} = {_FROM_INVITATION.format(column=column)}" for column in ("team_id", "region", "segment"))
    )


def downgrade():
    with op.batch_alter_table('answers', schema=None) as batch_op:
        batch_op.drop_column('segment')
        batch_op.drop_column('region')
        batch_op.drop_column('team_id')
