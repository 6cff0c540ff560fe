"""What a put prints is safe to show: k0sctl's long output lines reach stderr in pieces, masked as a whole (a
secret that k0sctl prints across the place where the supervisor cuts a line, past 64 KiB wherever the reads of
its pipe end, is masked), and control characters from a config reach stderr and metadata escaped."""

from __future__ import annotations

from pathlib import Path

from tests.support.fixtures import Double, k0sctl_yaml
from tests.support.resource import Resource

PASSPHRASE = "long-line-passphrase-0123456789"
REPEAT = 12_000  # about 450 KiB in one line: cut several times, and wherever a cut falls, in a secret or near


def test_a_secret_across_the_cut_of_a_long_line_is_masked(resource: Resource, workdir: Path, double: Double) -> None:
    source = {"encryption": {"passphrase": PASSPHRASE}, "k0sctl": {"env": {"LONG_LINE": "y" * 7 + PASSPHRASE}}}
    resource.secrets.append(PASSPHRASE)
    double.set(running=True, echo_env=["LONG_LINE"], echo_repeat=REPEAT)
    run = resource.put({"source": source, "params": {"command": "apply"}}, workdir).expect_ok()
    for size in (8, 16, len(PASSPHRASE)):  # no part of it either, wherever the cut fell
        assert not any(PASSPHRASE[i:i + size] in run.stderr for i in range(len(PASSPHRASE) - size + 1))
    shown = [line for line in run.stderr.splitlines() if "y" * 7 in line]
    assert len(shown) >= 4, "the line was not cut"
    assert "".join(shown).count("y" * 7 + "***") == REPEAT


def test_a_hostile_cluster_name_reaches_stderr_and_metadata_escaped(resource: Resource, workdir: Path,
                                                                    double: Double) -> None:
    """`metadata.name` with terminal escapes, a carriage return and a line break: shown, never acted on."""
    hostile = "acme\x1b[2K\rforged\nline\x1b]0;pwned\x07"
    (workdir / "config" / "k0sctl.yaml").write_text(k0sctl_yaml(name=hostile), encoding="utf-8")
    run = resource.put({"source": {}, "params": {"command": "ping", "fail_on_unreachable": False,
                                                 "count": 1, "timeout": 1, "traceroute": False}}, workdir)
    shown = run.stderr + "".join(item["value"] for item in (run.answer or {}).get("metadata", []))
    assert "\x1b[2K" not in shown and "\x1b]0" not in shown and "\r" not in shown and "\x07" not in shown
    assert {"name": "cluster", "value": "acme\\x1b[2K\\x0dforged\\x0aline\\x1b]0;pwned\\x07"} in \
        run.expect_ok().answer["metadata"]
