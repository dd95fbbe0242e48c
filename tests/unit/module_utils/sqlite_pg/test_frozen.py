"""Inside cutover's freeze a count is read once per side; outside it, always read."""

from sqlite_pg import frozen


def test_counts_are_remembered_only_inside_the_freeze():
    reads = []

    def read():
        reads.append(1)
        return len(reads)

    assert frozen.recall("k", read) == 1 and frozen.recall("k", read) == 2   # outside: read each time
    with frozen.counts():
        assert frozen.recall("k", read) == 3 and frozen.recall("k", read) == 3
        frozen.leave("pg", (10, 1))
        assert frozen.take("pg") == (10, 1)
        assert frozen.take("pg") is None        # taken once: a second verification counts again
    frozen.leave("pg", (10, 1))                 # outside: nothing is kept
    assert frozen.take("pg") is None and not frozen.active()
