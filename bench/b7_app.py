"""The WSGI app B7 serves with gunicorn: Canary as `wsgi.py` builds it, plus
one benchmark-only route, B7's floor, which stores the raw posted body with
one INSERT. It exists only here, never in the product.

    gunicorn --config gunicorn.conf.py bench.b7_app:app
"""

from flask import request
from sqlalchemy import Column, Integer, MetaData, Table, Text, insert

from surveys.app import create_app
from surveys.extensions import csrf, db

floor_metadata = MetaData()
floor_rows = Table(
    "bench_b7_floor", floor_metadata,
    Column("id", Integer, primary_key=True),
    Column("body", Text, nullable=False),
)

app = create_app()


@csrf.exempt
def floor():
    """One INSERT of the posted body, committed: the least storing an event costs."""
    db.session.execute(insert(floor_rows).values(body=request.get_data(as_text=True)))
    db.session.commit()
    return "", 202


app.add_url_rule("/bench/floor", "bench_floor", floor, methods=["POST"])
