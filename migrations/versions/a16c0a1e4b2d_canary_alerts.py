"""Canary alerts: watched points per round, alerts, webhooks, notifications

Revision ID: a16c0a1e4b2d
Revises: d13a5e55105f
Create Date: 2026-12-01 13:30:00

"""
from alembic import op
import sqlalchemy as sa

from surveys.extensions import UTCDateTime

# revision identifiers, used by Alembic.
revision = 'a16c0a1e4b2d'
down_revision = 'd13a5e55105f'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'alert_points',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('round_id', sa.Integer(), nullable=False),
        sa.Column('cadence_id', sa.Integer(), nullable=False),
        sa.Column('measures', sa.JSON(), nullable=False),
        sa.Column('policy', sa.JSON(), nullable=False),
        sa.Column('points', sa.JSON(), nullable=False),
        sa.Column('computed_at', UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['cadence_id'], ['cadences.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['round_id'], ['rounds.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('round_id'),
    )
    op.create_index(op.f('ix_alert_points_cadence_id'), 'alert_points', ['cadence_id'], unique=False)
    op.create_table(
        'alerts',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('question_set_id', sa.Integer(), nullable=False),
        sa.Column('cadence_id', sa.Integer(), nullable=False),
        sa.Column('round_id', sa.Integer(), nullable=False),
        sa.Column('question_key', sa.String(length=64), nullable=False),
        sa.Column('metric', sa.String(length=32), nullable=False),
        sa.Column('option', sa.String(length=64), nullable=False),
        sa.Column('slice_kind', sa.String(length=16), nullable=False),
        sa.Column('slice_name', sa.String(length=300), nullable=False),
        sa.Column('value', sa.Float(), nullable=False),
        sa.Column('baseline', sa.Float(), nullable=False),
        sa.Column('low', sa.Float(), nullable=False),
        sa.Column('high', sa.Float(), nullable=False),
        sa.Column('ci_low', sa.Float(), nullable=True),
        sa.Column('ci_high', sa.Float(), nullable=True),
        sa.Column('n', sa.Integer(), nullable=False),
        sa.Column('baseline_rounds', sa.Integer(), nullable=False),
        sa.Column('direction', sa.String(length=4), nullable=False),
        sa.Column('rule', sa.String(length=16), nullable=False),
        sa.Column('score', sa.Float(), nullable=False),
        sa.Column('history', sa.JSON(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('note', sa.Text(), nullable=False),
        sa.Column('state_changed_at', UTCDateTime(), nullable=True),
        sa.Column('state_changed_by_id', sa.Integer(), nullable=True),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['cadence_id'], ['cadences.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['question_set_id'], ['question_sets.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['round_id'], ['rounds.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['state_changed_by_id'], ['people.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('round_id', 'slice_kind', 'slice_name', 'question_key', 'metric', 'option'),
    )
    op.create_index(op.f('ix_alerts_cadence_id'), 'alerts', ['cadence_id'], unique=False)
    op.create_index(op.f('ix_alerts_question_set_id'), 'alerts', ['question_set_id'], unique=False)
    op.create_index(op.f('ix_alerts_round_id'), 'alerts', ['round_id'], unique=False)
    op.create_index(op.f('ix_alerts_state'), 'alerts', ['state'], unique=False)
    op.create_table(
        'alert_webhooks',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('question_set_id', sa.Integer(), nullable=False),
        sa.Column('url', sa.String(length=2000), nullable=False),
        sa.Column('format', sa.String(length=8), nullable=False),
        sa.Column('secret', sa.String(length=200), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['question_set_id'], ['question_sets.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(op.f('ix_alert_webhooks_question_set_id'), 'alert_webhooks', ['question_set_id'], unique=False)
    op.create_table(
        'alert_notifications',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('round_id', sa.Integer(), nullable=False),
        sa.Column('channel', sa.String(length=8), nullable=False),
        sa.Column('target', sa.String(length=40), nullable=False),
        sa.Column('alert_ids', sa.JSON(), nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('last_error', sa.Text(), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('sent_at', UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['round_id'], ['rounds.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('round_id', 'channel', 'target'),
    )
    op.create_index(op.f('ix_alert_notifications_round_id'), 'alert_notifications', ['round_id'], unique=False)
    op.create_index(op.f('ix_alert_notifications_status'), 'alert_notifications', ['status'], unique=False)


def downgrade():
    op.drop_table('alert_notifications')
    op.drop_table('alert_webhooks')
    op.drop_table('alerts')
    op.drop_table('alert_points')
