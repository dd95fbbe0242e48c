"""Filter: the subjectAltName entries of a server certificate.

``names | tls_subject_alt_names`` turns host names and addresses (as app hosts reach the
server) into ``DNS:<name>`` / ``IP:<address>`` entries, once each, in the given order;
empty values and socket paths are dropped. libpq's verify-full matches an address only
against an IP entry and a name only against a DNS entry.
"""

import ipaddress


def tls_subject_alt_names(names):
    out = []
    for name in names or []:
        name = str(name or "").strip().strip("[]")
        if not name or name.startswith("/"):
            continue
        try:
            entry = "IP:" + str(ipaddress.ip_address(name))
        except ValueError:
            entry = "DNS:" + name.lower()
        if entry not in out:
            out.append(entry)
    return out


class FilterModule:
    def filters(self):
        return {"tls_subject_alt_names": tls_subject_alt_names}
