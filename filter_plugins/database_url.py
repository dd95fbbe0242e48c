"""Filter: the app's DATABASE_URL, with the password URL-encoded."""

import re
from urllib.parse import quote, urlencode


def database_url(driver, user, password, host, port, db, sslmode="", sslrootcert="", schema=""):
    """``postgresql+psycopg2://user:pa%2Fss@host:5432/db?sslmode=verify-full&sslrootcert=...``.

    ``schema`` other than public (one schema per app host in one database): the session's
    search_path through libpq's ``options``, so the app's unqualified names reach its own
    schema, then public (extensions)."""
    auth = quote(str(user), safe="") + (":" + quote(str(password), safe="") if password else "")
    query = {k: v for k, v in (("sslmode", sslmode), ("sslrootcert", sslrootcert)) if v}
    if schema and schema != "public":
        name = schema if re.fullmatch(r"[a-z_][a-z0-9_]*", schema) else '"' + schema.replace('"', '""') + '"'
        # libpq splits options on spaces; a backslash keeps one inside the value.
        query["options"] = "-csearch_path=" + (name + ",public").replace("\\", "\\\\").replace(" ", "\\ ")
    netloc = host if ":" not in str(host) or str(host).startswith("[") else f"[{host}]"
    url = f"{driver}://{auth}@{netloc}:{int(port)}/{quote(str(db), safe='')}"
    return url + ("?" + urlencode(query) if query else "")


class FilterModule:
    def filters(self):
        return {"database_url": database_url}
