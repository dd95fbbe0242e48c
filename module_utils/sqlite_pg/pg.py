"""The one place the engine imports psycopg2. Without the driver the engine still imports,
so each module can say what to install (``missing_required_lib``) instead of failing with
a traceback before it has started."""

try:
    import psycopg2
    import psycopg2.errors
    import psycopg2.extensions
    import psycopg2.extras
    from psycopg2 import sql

    HAS_PSYCOPG2 = True
except ImportError:  # reported by the modules through missing_required_lib
    psycopg2 = sql = None
    HAS_PSYCOPG2 = False
