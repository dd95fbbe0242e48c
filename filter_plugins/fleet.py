"""Filter: what one db server must provide for the app hosts it serves.

``targets | fleet_provision`` takes the targets the app hosts publish (roles/migration
tasks/fleet.yml: db, schema, user, password, app_user, app_password, connections) and
returns roles/postgresql's inputs: ``users`` (each role once), ``databases`` (each
database and schema once, owned by its migration role) and ``connections`` (the sum).
"""

from ansible.errors import AnsibleFilterError


def fleet_provision(targets):
    users, databases, owners = {}, {}, {}
    for t in targets:
        for name, password in ((t["user"], t["password"]), (t["app_user"], t["app_password"])):
            if users.setdefault(name, password) != password:
                raise AnsibleFilterError(f"role {name!r} is given two different passwords by the app hosts: "
                                         "give each role one password")
        if owners.setdefault(t["db"], t["user"]) != t["user"]:
            raise AnsibleFilterError(f"database {t['db']!r} would be owned by both {owners[t['db']]!r} and "
                                     f"{t['user']!r}: app hosts that share a database share its migration_db_user")
        databases[(t["db"], t["schema"])] = dict(name=t["db"], owner=t["user"], schema=t["schema"])
    return dict(users=[dict(name=n, password=p) for n, p in users.items()],
                databases=list(databases.values()),
                connections=sum(int(t.get("connections") or 0) for t in targets))


class FilterModule:
    def filters(self):
        return {"fleet_provision": fleet_provision}
