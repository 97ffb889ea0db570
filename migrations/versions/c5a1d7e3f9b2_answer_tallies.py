"""answer and respondent tallies: the scorecard's sums, kept as answers change

Revision ID: c5a1d7e3f9b2
Revises: b7d2f4a6c8e1
Create Date: 2026-12-01 22:30:00

"""
import json

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c5a1d7e3f9b2'
down_revision = 'b7d2f4a6c8e1'
branch_labels = None
depends_on = None


def _cell_columns():
    return [
        sa.Column('team_id', sa.Integer(), nullable=True),
        sa.Column('region', sa.String(length=100), nullable=True),
        sa.Column('segment', sa.String(length=100), nullable=True),
        sa.Column('question_key', sa.String(length=64), nullable=False),
    ]


def upgrade():
    values = op.create_table(
        'answer_tallies',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('round_id', sa.Integer(), nullable=False),
        sa.Column('slot', sa.Text(), nullable=False),
        *_cell_columns(),
        sa.Column('value_num', sa.Float(), nullable=True),
        sa.Column('value_text', sa.Text(), nullable=True),
        sa.Column('answers', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['round_id'], ['rounds.id'], name=op.f('fk_answer_tallies_round_id_rounds')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_answer_tallies')),
        sa.UniqueConstraint('round_id', 'slot', name=op.f('uq_answer_tallies_round_id_slot')),
    )
    respondents = op.create_table(
        'respondent_tallies',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('round_id', sa.Integer(), nullable=False),
        sa.Column('slot', sa.Text(), nullable=False),
        *_cell_columns(),
        sa.Column('respondents', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['round_id'], ['rounds.id'], name=op.f('fk_respondent_tallies_round_id_rounds')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_respondent_tallies')),
        sa.UniqueConstraint('round_id', 'slot', name=op.f('uq_respondent_tallies_round_id_slot')),
    )
    _tally_stored_answers(values, respondents)


def _slot(*parts):
    # The slot format of surveys.scorecard.tallies at this revision (a
    # migration keeps its own copy: the app's may change after it). A
    # round's tallies can be recounted any time with
    # `flask scorecard check-tallies --repair`.
    return json.dumps(list(parts), separators=(',', ':'))


def _number(value):
    return None if value is None else float(value) + 0.0


def _tally_stored_answers(values, respondents):
    """The answers stored before this revision, tallied a round at a time
    (free-text answers count respondents only, as the app tallies them)."""
    connection = op.get_bind()
    round_ids = connection.execute(sa.text('SELECT DISTINCT round_id FROM answers ORDER BY round_id')).scalars().all()
    for round_id in round_ids:
        params = {'round_id': round_id}
        value_rows = connection.execute(sa.text(
            'SELECT a.team_id, a.region, a.segment, a.question_key, a.value_num, a.value_text, count(*)'
            ' FROM answers a JOIN rounds r ON r.id = a.round_id'
            ' WHERE a.round_id = :round_id AND NOT EXISTS (SELECT 1 FROM questions q'
            '   WHERE q.version_id = r.question_set_version_id AND q.key = a.question_key AND q.type = \'text\')'
            ' GROUP BY a.team_id, a.region, a.segment, a.question_key, a.value_num, a.value_text'), params).all()
        if value_rows:
            connection.execute(values.insert(), [
                {'round_id': round_id, 'slot': _slot(team_id, region, segment, key, _number(num), text),
                 'team_id': team_id, 'region': region, 'segment': segment, 'question_key': key,
                 'value_num': _number(num), 'value_text': text, 'answers': count}
                for team_id, region, segment, key, num, text, count in value_rows])
        respondent_rows = connection.execute(sa.text(
            'SELECT team_id, region, segment, question_key, count(DISTINCT response_id) FROM answers'
            ' WHERE round_id = :round_id GROUP BY team_id, region, segment, question_key'), params).all()
        if respondent_rows:
            connection.execute(respondents.insert(), [
                {'round_id': round_id, 'slot': _slot(team_id, region, segment, key), 'team_id': team_id,
                 'region': region, 'segment': segment, 'question_key': key, 'respondents': count}
                for team_id, region, segment, key, count in respondent_rows])


def downgrade():
    op.drop_table('respondent_tallies')
    op.drop_table('answer_tallies')
