"""deal amounts in the reporting currency: exchange rates and each deal's converted amount

Revision ID: b7d2f4a6c8e1
Revises: b4e8c2a6d913
Create Date: 2026-12-01 18:50:00

"""
import os

from alembic import op
import sqlalchemy as sa

from surveys.extensions import UTCDateTime


# revision identifiers, used by Alembic.
revision = 'b7d2f4a6c8e1'
down_revision = 'b4e8c2a6d913'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'exchange_rates',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('rate', sa.Float(), nullable=False),
        sa.Column('effective_from', sa.Date(), nullable=False),
        sa.Column('updated_at', UTCDateTime(), nullable=False),
        sa.CheckConstraint('rate > 0', name=op.f('ck_exchange_rates_positive_rate')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_exchange_rates')),
        sa.UniqueConstraint('currency', 'effective_from', name=op.f('uq_exchange_rates_currency_effective_from')),
    )
    with op.batch_alter_table('deals', schema=None) as batch_op:
        batch_op.add_column(sa.Column('amount_reporting', sa.Float(), nullable=True))
    # No rates exist yet: deals already in the reporting currency keep their
    # amount; the others wait for their currency's rates (the rates page
    # names them, and importing rates converts them).
    reporting = (os.environ.get('REPORTING_CURRENCY') or 'USD').strip().upper()
    op.execute(sa.text("UPDATE deals SET amount_reporting = amount WHERE currency = :reporting "
                       "AND close_date IS NOT NULL").bindparams(reporting=reporting))


def downgrade():
    # A plain DROP COLUMN: batch mode would copy and drop deals, which the
    # rows referencing it forbid on SQLite.
    op.execute('ALTER TABLE deals DROP COLUMN amount_reporting')
    op.drop_table('exchange_rates')
