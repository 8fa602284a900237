"""Extension objects, created unbound and bound to an app in ``init_app``."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from flask import Flask, request
from flask_migrate import Migrate
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import event
from sqlalchemy.engine import Engine

from .errors import ErrorOut, handle_http_exception
from .models.base import Base

MIGRATIONS = str(Path(__file__).resolve().parent.parent / "migrations")


class PartnerApi(Api):
    """flask-smorest's Api, answering HTTP errors in our one JSON error shape (and saying so
    in the OpenAPI document)."""

    ERROR_SCHEMA = ErrorOut

    def handle_http_exception(self, error):
        # registered for the whole app: the pages (rider pages, console) answer with a page
        from .errors import page_for

        page = page_for(request.path)
        if page is not None:
            return page(error)
        return handle_http_exception(error)


# expire_on_commit=False: a view that commits can still build its response from the objects
# it holds, without reading them all back
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})
migrate = Migrate(compare_type=True, render_as_batch=True)
api = PartnerApi()


@event.listens_for(Engine, "connect")
def _sqlite_connect(dbapi_connection, _record):
    """SQLite: foreign keys on, WAL, wait for locks, and let SQLAlchemy's begin() decide."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()


@event.listens_for(Engine, "begin")
def _sqlite_begin(connection):
    """SQLite: take the write lock when a transaction starts, so two writers queue instead
    of failing when both try to upgrade a read lock. A connection marked
    ``execution_options(read_only=True)`` (a long read such as a leaderboard rebuild) begins
    a plain read transaction: a snapshot under WAL, no lock that writers wait for."""
    if connection.dialect.name == "sqlite":
        read_only = connection.get_execution_options().get("read_only")
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def init_db(app: Flask) -> None:
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///"):
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    db.init_app(app)
    migrate.init_app(app, db, directory=MIGRATIONS)
