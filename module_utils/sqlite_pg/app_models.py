"""What the app's own SQLAlchemy models say about the schema (the guide's step 3 and 5.3).

SQLite has no ENUM type: SQLAlchemy stores an ``Enum`` column's member *names* in a
VARCHAR. On PostgreSQL the same models create a native ENUM type whose labels are those
names. Given ``models: "package.module:Base"`` (and ``app_path``, the directory to import
it from), the migration creates those ENUM types and uses them for those columns.
"""

import importlib
import sys

from .errors import SchemaError


def load_metadata(spec, app_path=None):
    """The ``MetaData`` of ``package.module:Base`` (a declarative base or a MetaData)."""
    if ":" not in spec:
        raise SchemaError(f"models must look like 'package.module:Base', not {spec!r}")
    module_name, _, attr = spec.partition(":")
    added = False
    if app_path and app_path not in sys.path:
        sys.path.insert(0, app_path)
        added = True
    try:
        module = importlib.import_module(module_name)
        base = getattr(module, attr)
    except (ImportError, AttributeError) as exc:
        raise SchemaError(f"cannot load the app's models {spec!r} (app_path {app_path!r}): {exc}") from None
    finally:
        if added:
            sys.path.remove(app_path)
    return getattr(base, "metadata", base)


def enum_columns(spec, app_path=None):
    """{"table.column": (enum type name, labels)} for every native Enum column of the models."""
    metadata = load_metadata(spec, app_path)
    try:
        from sqlalchemy import Enum
    except ImportError:  # pragma: no cover - the models could not have loaded without it
        raise SchemaError("SQLAlchemy is needed to read the app's models") from None
    out = {}
    for table in metadata.tables.values():
        for column in table.columns:
            kind = column.type
            if isinstance(kind, Enum) and kind.native_enum:
                name = kind.name or (kind.enum_class.__name__.lower() if kind.enum_class else None)
                if not name:
                    raise SchemaError(f"{table.name}.{column.name}: an Enum without a name cannot become a "
                                      "PostgreSQL type")
                out[f"{table.name}.{column.name}"] = (name, tuple(kind.enums))
    return out
