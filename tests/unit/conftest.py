"""Fixtures shared by the unit tests."""
from __future__ import annotations

import mitogen.master
import pytest

from bench.isolation_cost import TARGET_PYTHON


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


@pytest.fixture
def target(router):
    """A stand-in target interpreter: a local mitogen child running the
    target's Python, shut down after the test."""
    context = router.local(python_path=[TARGET_PYTHON], connect_timeout=30)
    try:
        yield context
    finally:
        context.shutdown(wait=True)
