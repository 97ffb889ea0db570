"""rounds record the confidentiality policy they were sent under; finalized
scorecards keep the disclosure plan and team tree they published under

Revision ID: c12a7d3e9b01
Revises: a16c0a1e4b2d
Create Date: 2026-12-01 12:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c12a7d3e9b01'
down_revision = 'a16c0a1e4b2d'
branch_labels = None
depends_on = None


# Plain ADD/DROP COLUMN (SQLite has both since 3.35): a batch operation would
# copy and drop `rounds`, which other tables reference, and SQLite refuses
# that with foreign keys on.


def upgrade():
    op.add_column('rounds', sa.Column('policy', sa.JSON(), nullable=True))
    op.add_column('scorecard_snapshots', sa.Column('disclosure', sa.JSON(), nullable=True))
    # Rounds sent before this revision: the promise they carried is at least
    # what their set says now (a set could only have become stricter since
    # answers existed), so record that.
    op.execute(
        "UPDATE rounds SET policy = (SELECT json_object('confidentiality', qs.confidentiality,"
        " 'min_group_size', qs.min_group_size, 'comment_min_group_size', qs.comment_min_group_size,"
        " 'hold_until_close', qs.hold_until_close = 1)"
        " FROM cadences c JOIN question_sets qs ON qs.id = c.question_set_id WHERE c.id = rounds.cadence_id)"
        " WHERE status != 'skipped'"
        if op.get_bind().dialect.name == "sqlite" else
        "UPDATE rounds SET policy = (SELECT json_build_object('confidentiality', qs.confidentiality,"
        " 'min_group_size', qs.min_group_size, 'comment_min_group_size', qs.comment_min_group_size,"
        " 'hold_until_close', qs.hold_until_close)"
        " FROM cadences c JOIN question_sets qs ON qs.id = c.question_set_id WHERE c.id = rounds.cadence_id)"
        " WHERE status != 'skipped'"
    )


def downgrade():
    op.execute('ALTER TABLE scorecard_snapshots DROP COLUMN disclosure')
    op.execute('ALTER TABLE rounds DROP COLUMN policy')
