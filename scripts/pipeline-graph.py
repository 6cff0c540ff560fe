#!/usr/bin/env python3
"""Draw a Concourse pipeline as a picture: resources, jobs, and what flows between them.

    scripts/pipeline-graph.py [-c pipeline/pipeline.yml] [-o docs/pipeline.svg] [--dot]

Reads the pipeline YAML (its ((vars)) stay as they are), writes Graphviz DOT and renders it with
Graphviz's `dot -Tsvg` (Debian package `graphviz`); `--dot` writes the DOT text instead. Like the
Concourse UI: resources a job gets are on its left (solid edge: triggers the job, dashed: does not),
resources it puts to on its right, and a `passed:` constraint is an edge from job to job.

The SVG carries the sha256 of the DOT text in a comment, so a test can tell whether the picture
matches the pipeline even where another Graphviz version would lay it out differently.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
SHA_MARK = "pipeline-graph dot sha256:"

# Step keys that hold sub-steps, and the hooks that hold one step each.
NESTED_LISTS = ("in_parallel", "do", "aggregate")
HOOKS = ("on_success", "on_failure", "on_error", "on_abort", "ensure")


@dataclass
class Job:
    name: str
    gets: list[tuple[str, bool, list[str]]] = field(default_factory=list)  # resource, trigger, passed
    puts: list[tuple[str, str]] = field(default_factory=list)  # resource, command
    tasks: list[str] = field(default_factory=list)


def walk_steps(step: Any, in_hook: bool = False) -> Iterator[tuple[dict[str, Any], bool]]:
    """Every step of a plan, depth first, with whether it sits in a hook."""
    if isinstance(step, list):
        for item in step:
            yield from walk_steps(item, in_hook)
        return
    if not isinstance(step, dict):
        return
    yield step, in_hook
    for key in NESTED_LISTS:
        nested = step.get(key)
        if isinstance(nested, dict):  # in_parallel: {steps: [...], limit: N}
            nested = nested.get("steps")
        if nested is not None:
            yield from walk_steps(nested, in_hook)
    for key in ("try", "across"):
        if isinstance(step.get(key), dict):
            yield from walk_steps(step[key], in_hook)
    for key in HOOKS:
        if key in step:
            yield from walk_steps(step[key], True)


def jobs_of(pipeline: dict[str, Any]) -> list[Job]:
    jobs = []
    for raw in pipeline.get("jobs") or []:
        job = Job(raw["name"])
        for step, in_hook in walk_steps(raw.get("plan") or []):
            if "get" in step:
                resource = step.get("resource") or step["get"]
                job.gets.append((resource, bool(step.get("trigger")), list(step.get("passed") or [])))
            elif "put" in step:
                resource = step.get("resource") or step["put"]
                params = step.get("params") or {}
                command = params.get("command", "") if isinstance(params, dict) else ""
                job.puts.append((resource, str(command)))
            elif "task" in step and not in_hook:
                job.tasks.append(str(step["task"]))
        jobs.append(job)
    return jobs


def quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(pipeline: dict[str, Any], title: str) -> str:
    resources = {r["name"]: r for r in pipeline.get("resources") or []}
    jobs = jobs_of(pipeline)
    lines = [
        f"digraph {quote(title)} {{",
        "  rankdir=LR;",
        "  nodesep=0.35;",
        "  ranksep=0.9;",
        '  bgcolor="#3d3c3c";',
        '  fontname="Helvetica";',
        '  fontcolor="#ffffff";',
        f"  label={quote(title + '  (solid: triggers the job, dashed: no trigger)')};",
        "  labelloc=t;",
        '  node [fontname="Helvetica", fontsize=12, style="filled", penwidth=0];',
        '  edge [color="#bdbdbd", fontname="Helvetica", fontsize=10, fontcolor="#e0e0e0", arrowsize=0.7];',
    ]

    def resource_label(name: str) -> str:
        res = resources.get(name, {})
        icon = res.get("icon")
        kind = str(res.get("type", "?")) + (f", icon {icon}" if icon else "")
        return quote(f"{name}\n({kind})")

    inputs = sorted({r for job in jobs for r, _, _ in job.gets})
    outputs = sorted({r for job in jobs for r, _ in job.puts})
    lines.append("  subgraph inputs { rank=source;")
    for name in inputs:
        lines.append(f'    {quote("in:" + name)} [label={resource_label(name)}, shape=box, '
                     'fillcolor="#2a2929", fontcolor="#ffffff"];')
    lines.append("  }")
    lines.append("  subgraph outputs { rank=sink;")
    for name in outputs:
        lines.append(f'    {quote("out:" + name)} [label={resource_label(name)}, shape=box, '
                     'fillcolor="#2a2929", fontcolor="#ffffff"];')
    lines.append("  }")

    for job in jobs:
        detail = [f"put {cmd}" if cmd else f"put {res}" for res, cmd in job.puts]
        detail += [f"task {task}" for task in job.tasks]
        if not any(trigger for _, trigger, _ in job.gets):
            detail.append("manual")
        label = job.name + ("\n" + ", ".join(detail) if detail else "")
        lines.append(f'  {quote("job:" + job.name)} [label={quote(label)}, shape=box, '
                     'fillcolor="#11c560", fontcolor="#000000"];')

    for job in jobs:
        for resource, trigger, passed in job.gets:
            style = "solid" if trigger else "dashed"
            if passed:
                for upstream in passed:
                    lines.append(f'  {quote("job:" + upstream)} -> {quote("job:" + job.name)} '
                                 f'[label={quote(resource + " (passed)")}, style={style}];')
            else:
                lines.append(f'  {quote("in:" + resource)} -> {quote("job:" + job.name)} [style={style}];')
        for resource, command in job.puts:
            label = f" [label={quote(command)}]" if command else ""
            lines.append(f'  {quote("job:" + job.name)} -> {quote("out:" + resource)}{label};')
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_svg(dot_text: str) -> str:
    dot = shutil.which("dot")
    if dot is None:
        raise SystemExit("pipeline-graph: Graphviz `dot` is not installed (Debian: apt-get install graphviz)")
    proc = subprocess.run([dot, "-Tsvg"], input=dot_text, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"pipeline-graph: dot failed: {proc.stderr.strip()}")
    svg = proc.stdout
    digest = hashlib.sha256(dot_text.encode()).hexdigest()
    mark = f"<!-- {SHA_MARK} {digest} -->\n"
    # After the XML declaration and doctype, before the <svg> element.
    at = svg.find("<svg")
    return svg[:at] + mark + svg[at:] if at >= 0 else mark + svg


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-c", "--config", type=Path, default=ROOT / "pipeline" / "pipeline.yml")
    parser.add_argument("-o", "--output", type=Path, default=ROOT / "docs" / "pipeline.svg")
    parser.add_argument("--dot", action="store_true", help="write the Graphviz DOT text instead of SVG")
    parser.add_argument("--title", default="sample pipeline: pipeline/pipeline.yml")
    args = parser.parse_args(argv)

    pipeline = yaml.safe_load(args.config.read_text(encoding="utf-8"))
    if not isinstance(pipeline, dict):
        raise SystemExit(f"pipeline-graph: {args.config} is not a pipeline (expected a mapping)")
    dot_text = to_dot(pipeline, args.title)
    out = dot_text if args.dot else render_svg(dot_text)
    if str(args.output) == "-":
        sys.stdout.write(out)
    else:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(out, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
