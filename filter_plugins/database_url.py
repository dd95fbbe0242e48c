"""Filter: the app's DATABASE_URL, with the password URL-encoded."""

from urllib.parse import quote, urlencode


def database_url(driver, user, password, host, port, db, sslmode="", sslrootcert=""):
    """``postgresql+psycopg2://user:pa%2Fss@host:5432/db?sslmode=verify-full&sslrootcert=...``."""
    auth = quote(str(user), safe="") + (":" + quote(str(password), safe="") if password else "")
    query = {k: v for k, v in (("sslmode", sslmode), ("sslrootcert", sslrootcert)) if v}
    netloc = host if ":" not in str(host) or str(host).startswith("[") else f"[{host}]"
    url = f"{driver}://{auth}@{netloc}:{int(port)}/{quote(str(db), safe='')}"
    return url + ("?" + urlencode(query) if query else "")


class FilterModule:
    def filters(self):
        return {"database_url": database_url}
