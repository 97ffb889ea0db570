"""The WSGI app B4 serves with gunicorn: Canary as `wsgi.py` builds it, plus
one benchmark-only route, B4's floor, which parses the same form a rep posts
and stores it with one INSERT. It exists only here, never in the product.

    gunicorn --config gunicorn.conf.py bench.b4_app:app
"""

import json

from flask import request
from sqlalchemy import Column, Integer, MetaData, Table, Text, insert

from surveys.app import create_app
from surveys.extensions import csrf, db

floor_metadata = MetaData()
floor_rows = Table(
    "bench_b4_floor", floor_metadata,
    Column("id", Integer, primary_key=True),
    Column("body", Text, nullable=False),
)

app = create_app()


@csrf.exempt
def floor():
    """One INSERT of the posted form, committed: the least a submission costs."""
    db.session.execute(insert(floor_rows).values(body=json.dumps(request.form.to_dict(flat=False))))
    db.session.commit()
    return "", 201


app.add_url_rule("/bench/floor", "bench_floor", floor, methods=["POST"])
