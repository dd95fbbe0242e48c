"""A small Django app whose models write a SQLite database the way Django spells values
(tests/unit/module_utils/sqlite_pg/test_django.py)."""
