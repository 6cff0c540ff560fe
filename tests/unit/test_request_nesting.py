"""The request's nesting is bounded by the resource, the same on every Python: the json module's own
limit moved between 3.11 (about 1,000 levels) and 3.13 (several thousand)."""

from __future__ import annotations

import json

import pytest

from k0sctl_resource.concourse.protocol import MAX_NESTING, parse_json
from k0sctl_resource.runtime.errors import ResourceError


@pytest.mark.parametrize("depth", [MAX_NESTING + 1, 5000, 100_000])
def test_too_deep_is_one_line_on_every_python(depth: int) -> None:
    for text in ("[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth, "[" * depth):
        with pytest.raises(ResourceError, match=r"^request: JSON nested too deeply \(more than 64 levels\)$"):
            parse_json(text)


def test_brackets_inside_strings_do_not_count() -> None:
    deep = "[" * MAX_NESTING + "]" * MAX_NESTING
    assert parse_json(deep) is not None
    value = {"source": {"k": "[{" * 200 + '\\"[' * 100, "q": '"' + "[" * 200}}
    assert parse_json(json.dumps(value)) == value
