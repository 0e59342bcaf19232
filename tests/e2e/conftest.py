from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.fleet import TestFleet


@pytest.fixture
def fleet() -> Iterator[TestFleet]:
    f = TestFleet()
    try:
        yield f
    finally:
        f.close()
        assert f.leftovers() == [], "fleetnet down left namespaces behind"
