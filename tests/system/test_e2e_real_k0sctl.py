"""End to end: the resource's own steps drive the REAL k0sctl against a real SSH node.

The node (tests/support/node.py) is an sshd in its own network, UTS and mount namespaces, reached from a
"ctl" namespace where the resource runs exactly as Concourse runs it (JSON on stdin, one answer on
stdout). The key k0sctl logs in with comes only from ``source.ssh_private_key`` (through the
resource's private ssh-agent): the k0sctl config has no ``keyPath`` and HOME has no ``.ssh``.

Nothing is installed: only ``apply --dry-run``, a ``backup`` that k0sctl refuses (no running
controller), a ``reset`` that the resource refuses before k0sctl starts, and ``kubeconfig`` (fails: no
cluster). The node fixture checks afterwards that this machine was left unchanged.

What an ``apply --dry-run`` executes on the node (k0sctl v0.32 and v0.28.0 source, phase/*.go): the
phases of DRY_RUN_PHASES. Connect, OS detection, host/k0s facts and validation only read (``uname``,
``/etc/os-release``, ``hostname``, ``ip route``, ``date``, ``command -v``, ``test -f``, ``id -u``).
Changes are either wrapped in ``Manager.Wet`` (package installs, k0s config write, ``k0s install``,
service start) or private to the node: the lock file (v0.28, ``/run/lock``), the staged k0s binary
(``/usr/local/bin/k0s.tmp.*``, removed by Disconnect), ``mktemp`` files for ``k0s config validate``
(``$TMPDIR``), and on a host that looks like a container (v0.32 checks ``/.dockerenv``)
``mount --make-rshared /``, which runs in the node's own mount namespace.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support import OLDER, PINNED
from tests.support.k0sctl_fixtures import real_k0sctl
from tests.support.node import CTL_ADDRESS, K0S_VERSION, NODE_ADDRESS, NODE_HOSTNAME, SshNode
from tests.support.resource import Resource, StepRun, executable

pytestmark = [pytest.mark.k0sctl, pytest.mark.netns, pytest.mark.sshd]

VERSIONS = (PINNED, OLDER)
NEWEST = VERSIONS[0]
CLUSTER = "e2e-lab"
PHASE = re.compile(r"==> Running phase: (.+?)\"?\s*$")

# The phases an `apply --dry-run` of a fresh one-host cluster runs, by k0sctl version.
DRY_RUN_PHASES = {
    PINNED: [
        "Connect to hosts",
        "Detect host operating systems",
        "Prepare hosts",
        "Gather host facts",
        "Validate hosts",
        "Validate facts",
        "Stage k0s binaries on hosts",
        "Install k0s binaries on hosts",
        "Configure k0s",
        "Run Before Apply Hooks",
        "Initialize the k0s cluster",
        "Run After Apply Hooks",
        "Disconnect from hosts",
    ],
    "v0.28.0": [
        "Connect to hosts",
        "Detect host operating systems",
        "Acquire exclusive host lock",
        "Prepare hosts",
        "Gather host facts",
        "Validate hosts",
        "Validate facts",
        "Download k0s binaries to local host",
        "Upload k0s binaries to hosts",
        "Install k0s binaries on hosts",
        "Configure k0s",
        "Run Before Apply Hooks",
        "Initialize the k0s cluster",
        "Run After Apply Hooks",
        "Release exclusive host lock",
        "Disconnect from hosts",
    ],
}


# -- the real k0sctl --------------------------------------------------------------------------------



# -- the resource, run inside the ctl namespace -----------------------------------------------------

def make_resource(tmp_path: Path, version: str, node: SshNode | None = None) -> Resource:
    """The resource with the real k0sctl `version` first on PATH (inside the node's ctl namespace)."""
    home, tmpdir = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    tmpdir.mkdir()
    res = Resource(home=home, tmpdir=tmpdir, path_prefix=[real_k0sctl(version).parent],
                   argv_prefix=["ip", "netns", "exec", node.ctl.name] if node else [])
    if node is not None:
        res.secrets += [node.client.private, node.stranger.private]
    return res


def build_dir(tmp_path: Path, node: SshNode) -> Path:
    """The put's directory: config/k0sctl.yaml for the node, as the config repository would hold it."""
    d = tmp_path / "build"
    (d / "config").mkdir(parents=True)
    (d / "config" / "k0sctl.yaml").write_text(node.k0sctl_yaml(CLUSTER, node.k0s_stand_in()), encoding="utf-8")
    return d


def put(params: dict[str, Any], source: dict[str, Any]) -> dict[str, Any]:
    return {"source": source, "params": params}


def phases(run: StepRun) -> list[str]:
    return [m.group(1) for line in run.stderr.splitlines() if (m := PHASE.search(line))]


def one_error(run: StepRun) -> str:
    """The step failed with exactly one `error:` line and no traceback; that line."""
    assert run.returncode != 0, f"expected a failure\nstderr:\n{run.stderr}"
    assert len(run.error_lines) == 1, f"expected exactly one error line\nstderr:\n{run.stderr}"
    assert "Traceback" not in run.stderr
    return run.error_lines[0]


def node_leftovers(node: SshNode) -> dict[str, list[str]]:
    """What k0sctl left in the node's private /usr/local/bin, /run/lock and /tmp (its lock, staged binaries)."""
    found: dict[str, list[str]] = {}
    for folder in ("/usr/local/bin", "/run/lock", "/tmp"):
        listing = node.ssh(f"ls -A {folder}")
        assert listing.returncode == 0, listing.stderr
        names = listing.stdout.split()
        if folder == "/tmp":  # the node's own directory is bound in there
            names.remove(node.home.parts[2])
        if names:
            found[folder] = names
    return found


# -- tests ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("version", VERSIONS)
def test_dry_run_apply_through_out(ssh_node: SshNode, tmp_path: Path, version: str) -> None:
    resource = make_resource(tmp_path, version, ssh_node)
    workdir = build_dir(tmp_path, ssh_node)
    request = put({"command": "apply", "dry_run": True, "config": "config/k0sctl.yaml"},
                  {"ssh_private_key": ssh_node.client.private})

    run = resource.put(request, workdir).expect_ok()

    assert phases(run) == DRY_RUN_PHASES[version], run.stderr
    err = run.stderr
    assert f"{NODE_ADDRESS}:22: connected" in err
    assert re.search(rf"{NODE_ADDRESS}:22: is running Debian GNU/Linux( 12 \(bookworm\))?\"", err)
    assert f"{NODE_ADDRESS}:22: using {NODE_HOSTNAME} as hostname" in err
    assert f"uploading k0s binary from {ssh_node.k0s_stand_in()} to /usr/local/bin/k0s.tmp." in err
    # k0sctl's own plan, streamed, and the resource's summary of it
    assert "dry-run: cluster state altering actions would be performed:" in err
    assert f"dry-run:  - install k0s {K0S_VERSION} binary from /usr/local/bin/k0s.tmp." in err
    assert ("dry-run:  - install first k0s controller using `k0s install controller --data-dir=/var/lib/k0s "
            "--enable-worker=true --config=/etc/k0s/k0s.yaml`") in err
    assert "dry-run:  - start k0s service" in err
    assert re.search(r"^dry-run: k0sctl would change the cluster \(\d+ planned actions\):$", err, re.M)
    assert run.answer["version"] == {"ref": "none"}
    meta = run.metadata
    assert (meta["command"], meta["cluster"], meta["dry_run"], meta["changes"]) == ("apply", CLUSTER, "true", "true")
    assert int(meta["planned_actions"]) >= 4
    assert meta["k0sctl_version"] == version
    # Every login came from the ctl namespace and used the key of source.ssh_private_key.
    assert ssh_node.accepted(), ssh_node.log()
    assert set(ssh_node.accepted()) == {ssh_node.client.fingerprint}
    assert all(f"Connection from {CTL_ADDRESS} " in line for line in ssh_node.connections())
    # k0sctl removed the binary it staged and released its lock.
    assert node_leftovers(ssh_node) == {}
    leftovers = sorted(ssh_node.tmpdir.iterdir())
    if version == "v0.28.0":
        # rig v0.21 (k0sctl v0.28) writes files through a `mktemp` copy that it never removes: the generated
        # k0s config stays in the controller's $TMPDIR.
        assert len(leftovers) == 1 and leftovers[0].read_text().startswith("# generated-by-k0sctl")
    else:
        assert leftovers == []


def test_backup_without_running_controller(ssh_node: SshNode, tmp_path: Path) -> None:
    resource = make_resource(tmp_path, NEWEST, ssh_node)
    workdir = build_dir(tmp_path, ssh_node)
    bare = tmp_path / "backups.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    source = {"ssh_private_key": ssh_node.client.private, "backup": {"uri": f"file://{bare}"},
              "encryption": {"plaintext": True}}

    run = resource.put(put({"command": "backup"}, source), workdir)

    error = one_error(run)
    assert "failed to find a running controller" in error, error
    assert re.search(r"^--- last \d+ lines of k0sctl\.log ---$", run.stderr, re.M), run.stderr
    assert "Take backup" not in phases(run)  # k0sctl stopped before its backup phase
    assert set(ssh_node.accepted()) == {ssh_node.client.fingerprint}
    assert node_leftovers(ssh_node) == {}  # k0sctl released its lock
    refs = subprocess.run(["git", "-C", str(bare), "for-each-ref"], capture_output=True, text=True, check=True)
    assert refs.stdout == "", f"something was pushed to the backup repository:\n{refs.stdout}"


def test_reset_without_confirm_never_reaches_k0sctl(ssh_node: SshNode, tmp_path: Path) -> None:
    resource = make_resource(tmp_path, NEWEST, ssh_node)
    workdir = build_dir(tmp_path, ssh_node)

    run = resource.put(put({"command": "reset"}, {"ssh_private_key": ssh_node.client.private}), workdir)

    error = one_error(run)
    assert "params.confirm" in error and CLUSTER in error, error
    assert "$ k0sctl" not in run.stderr
    assert "Running phase" not in run.stderr
    assert ssh_node.connections() == [], ssh_node.log()


def test_kubeconfig_cli_fails_clearly(ssh_node: SshNode, tmp_path: Path) -> None:
    resource = make_resource(tmp_path, NEWEST, ssh_node)
    workdir = build_dir(tmp_path, ssh_node)
    source_file = tmp_path / "source.json"
    fd = os.open(source_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump({"ssh_private_key": ssh_node.client.private}, handle)

    run = resource.step(["kubeconfig", "-c", str(workdir / "config" / "k0sctl.yaml"), "--source",
                         str(source_file)], "")

    error = one_error(run)
    assert error.startswith("error: k0sctl kubeconfig failed: "), error
    assert "read kubeconfig from host" in error
    assert run.stdout == ""
    assert set(ssh_node.accepted()) == {ssh_node.client.fingerprint}


def test_wrong_key_fails_with_authentication_error(ssh_node: SshNode, tmp_path: Path) -> None:
    resource = make_resource(tmp_path, NEWEST, ssh_node)
    workdir = build_dir(tmp_path, ssh_node)
    # k0sctl retries a refused login for up to 10 minutes; the resource's own bound ends it sooner.
    source = {"ssh_private_key": ssh_node.stranger.private, "k0sctl": {"timeout": "3s"}}

    run = resource.put(put({"command": "apply", "dry_run": True}, source), workdir, timeout=60)

    error = one_error(run)
    resource.scan(run, extra_dirs=[workdir])
    assert ssh_node.accepted() == []
    refused = [line for line in ssh_node.log().splitlines() if line.startswith("Failed publickey for root")]
    assert refused and all(ssh_node.stranger.fingerprint in line for line in refused), ssh_node.log()
    reason = "ssh: unable to authenticate, attempted methods [none publickey]"
    assert reason in run.stderr  # k0sctl's own fatal line, streamed
    assert reason in error, error


@pytest.mark.parametrize("version", VERSIONS)
def test_version_reports_the_real_k0sctl(tmp_path: Path, version: str) -> None:
    resource = make_resource(tmp_path, version)
    proc = subprocess.run([executable(), "--version"], capture_output=True, text=True,
                          env=resource.environment(), timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("k0sctl-resource ")
    assert lines[1] == f"k0sctl {version} ({real_k0sctl(version)})"
    assert proc.stderr == ""
