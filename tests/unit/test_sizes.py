"""The house rule on size, held in CI: no module of the package over ~300 lines, no function over ~60."""

from __future__ import annotations

import ast

from tests.support import ROOT

PACKAGE = ROOT / "src" / "k0sctl_resource"
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 60


def sizes() -> dict[str, int]:
    """Lines per module ("ping/model.py") and per function ("ping/model.py:parse"), decorators included."""
    found: dict[str, int] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = str(path.relative_to(PACKAGE))
        text = path.read_text(encoding="utf-8")
        found[name] = len(text.splitlines())
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                key = f"{name}:{node.name}"
                found[key] = max(found.get(key, 0), (node.end_lineno or node.lineno) - first + 1)
    return found


def _limit(key: str) -> int:
    return MAX_FUNCTION_LINES if ":" in key else MAX_MODULE_LINES


def test_no_module_or_function_is_over_the_limit() -> None:
    over = {key: n for key, n in sizes().items() if n > _limit(key)}
    assert not over, (f"over {MAX_MODULE_LINES} lines per module or {MAX_FUNCTION_LINES} per function "
                      f"(split them): {over}")

