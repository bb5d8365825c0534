"""Fixtures shared by the unit tests."""
from __future__ import annotations

import mitogen.master
import pytest


@pytest.fixture(scope='module')
def router():
    """A mitogen router of this test process (its local children stand in
    for target interpreters); one per test module."""
    broker = mitogen.master.Broker()
    try:
        yield mitogen.master.Router(broker)
    finally:
        broker.shutdown()
        broker.join()
