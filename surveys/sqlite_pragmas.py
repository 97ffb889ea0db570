"""SQLite done right: foreign keys on, WAL so readers never block the writer,
and a busy timeout so concurrent writers (web, worker, tick) wait instead of
failing."""

import sqlite3

from sqlalchemy import event
from sqlalchemy.engine import Engine

_installed = False


def install():
    global _installed
    if _installed:
        return
    _installed = True

    @event.listens_for(Engine, "connect")
    def set_sqlite_pragmas(dbapi_connection, connection_record):
        if not isinstance(dbapi_connection, sqlite3.Connection):
            return
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
