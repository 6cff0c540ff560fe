"""The documentation holds together: every relative link of the Markdown files points to a file that
exists and, with `#anchor`, to a heading of that file; README.md stays the size of a resource's README."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support import ROOT

DOCS = ["README.md", "CONTRIBUTING.md", "SECURITY.md", "CHANGELOG.md", *(
    str(p.relative_to(ROOT)) for p in sorted((ROOT / "docs").glob("*.md")))]
LINK = re.compile(r"\]\((?!https?:|mailto:)([^)\s]+)\)")


def anchors(path: Path) -> set[str]:
    """GitHub's anchors of the file's headings (outside code blocks)."""
    found, fence = set(), False
    for line in path.read_text(encoding="utf-8").splitlines():
        fence ^= line.startswith("```")
        if not fence and (m := re.match(r"^#+ (.+)$", line)):
            found.add(re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-"))
    return found


def broken_links(source: Path) -> list[str]:
    broken = []
    for target in LINK.findall(source.read_text(encoding="utf-8")):
        file, _, anchor = target.partition("#")
        path = (source.parent / file).resolve() if file else source
        if not path.exists() or (anchor and path.suffix == ".md" and anchor not in anchors(path)):
            broken.append(target)
    return broken


def test_every_relative_link_resolves() -> None:
    assert {name: broken_links(ROOT / name) for name in DOCS if broken_links(ROOT / name)} == {}


def test_a_broken_link_is_found(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# A heading, with `code`\n```\n# not a heading\n```\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text("[ok](other.md#a-heading-with-code) [gone](missing.md) [no anchor](other.md#not-a-heading) "
                    "[self](#nowhere) [web](https://example.com/x#y)\n", encoding="utf-8")
    assert broken_links(page) == ["missing.md", "other.md#not-a-heading", "#nowhere"]


def test_readme_is_resource_sized() -> None:
    lines = len((ROOT / "README.md").read_text(encoding="utf-8").splitlines())
    assert lines <= 600, (  # the rest lives in docs/ (drills, fleet, retention, runbook, security, …)
        f"README.md has {lines} lines: it holds what a user of the resource needs; "
        "runbook, security, troubleshooting and performance notes go to docs/")
