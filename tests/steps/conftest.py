"""tests/steps run the steps in the test's own process by default (`Resource.in_process`): the same
request parsing, step and answer as the console script, without an interpreter start per step.

Real processes stay where the process is what is tested: the modules below (signals and aborts, the
imports of a fresh check, in-process against subprocess), and any test marked `subprocess`."""

from __future__ import annotations

import pytest

from tests.support.resource import Resource

AS_PROCESSES = {"test_abort", "test_check_cost", "test_in_process"}


@pytest.fixture
def resource(resource: Resource, request: pytest.FixtureRequest) -> Resource:
    module = request.node.module.__name__.rpartition(".")[2]
    resource.in_process = module not in AS_PROCESSES and request.node.get_closest_marker("subprocess") is None
    return resource
