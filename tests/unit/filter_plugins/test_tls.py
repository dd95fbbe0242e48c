"""tls_subject_alt_names: names become DNS entries, addresses IP entries, each once."""

from filter_plugins.tls import tls_subject_alt_names


def test_names_and_addresses():
    assert tls_subject_alt_names(["db1", "DB1.example.org", "10.0.0.5", "::1", "[fe80::1]", "db1"]) == [
        "DNS:db1", "DNS:db1.example.org", "IP:10.0.0.5", "IP:::1", "IP:fe80::1"]


def test_empty_values_and_sockets_are_dropped():
    assert tls_subject_alt_names(["", None, "/var/run/postgresql", " db "]) == ["DNS:db"]
    assert tls_subject_alt_names(None) == []
