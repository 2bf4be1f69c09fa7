"""The demo data set is the same on every load (regression: co-signature, votes and the
retraction were stamped with the current time, so a second ``demo --url`` added records)."""

from __future__ import annotations

import time

from stemedb.cli.demo import demo_records
from stemedb.model.ids import record_id


def test_demo_records_do_not_depend_on_the_clock() -> None:
    first = [record_id(r) for r in demo_records()]
    time.sleep(1.05)
    assert [record_id(r) for r in demo_records()] == first
