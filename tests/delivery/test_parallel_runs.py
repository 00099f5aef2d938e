"""`make test` runs on pytest-xdist workers (--dist loadgroup): the broker tests must share one
worker, or a fault test stops the node under another worker's test (CI failed so once). xdist
reads the `xdist_group` marks in its own `pytest_collection_modifyitems`, which has no order, so
the hook that sets them must run first."""

from __future__ import annotations

import pytest

from tests import conftest


def test_the_groups_are_marked_before_xdist_reads_them(request):
    [ours] = [impl for impl in request.config.pluginmanager.hook.pytest_collection_modifyitems.get_hookimpls()
              if impl.function is conftest.pytest_collection_modifyitems]
    assert ours.tryfirst


@pytest.mark.parametrize(("tiers", "group"), [
    ({"faults", "broker"}, "broker"), ({"broker", "subprocess"}, "broker"), ({"subprocess", "terraform"}, "subprocess"),
    ({"terraform"}, None), ({"helm", "scanner"}, None),
])
def test_every_test_that_touches_the_shared_broker_or_runs_make_is_in_one_group(tiers, group):
    assert conftest.xdist_group_of(tiers) == group
