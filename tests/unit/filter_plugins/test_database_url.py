"""database_url: the app's DATABASE_URL; a schema per app host travels as search_path."""

import psycopg2
from sqlalchemy import create_engine, text

from filter_plugins.database_url import database_url


def test_the_default_schema_adds_nothing():
    url = database_url("postgresql+psycopg2", "u", "pa/ss", "db1", 5432, "idea_planner", "verify-full", "/ca.pem")
    assert url == "postgresql+psycopg2://u:pa%2Fss@db1:5432/idea_planner?sslmode=verify-full&sslrootcert=%2Fca.pem"
    assert database_url("postgresql+psycopg2", "u", "", "db1", 5432, "d", schema="public").endswith("/d")


def test_a_schema_reaches_the_app_through_sqlalchemy(pg_db):
    admin = psycopg2.connect(host=pg_db["login_unix_socket"], port=pg_db["port"], user="postgres", dbname=pg_db["db"])
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute('CREATE SCHEMA app1; CREATE SCHEMA "odd name"; CREATE TABLE app1.users (id int); '
                    'CREATE TABLE "odd name".users (id int); INSERT INTO app1.users VALUES (1); '
                    'INSERT INTO "odd name".users VALUES (2)')
    admin.close()
    for schema, expected in (("app1", 1), ("odd name", 2)):
        url = database_url("postgresql+psycopg2", "postgres", "", "", pg_db["port"], pg_db["db"], schema=schema)
        engine = create_engine(url, connect_args={"host": pg_db["login_unix_socket"]})
        with engine.connect() as conn:   # unqualified names reach the host's own schema
            assert conn.execute(text("SELECT id FROM users")).scalar() == expected
        engine.dispose()
