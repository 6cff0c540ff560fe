"""DEMO of k0sctl-resource with the REAL k0sctl against a k0s test node (run it with `bash scripts/demo.sh`).

The node is the one the test suite uses (tests/support/k0s_node.py): an sshd in its own network, UTS and mount
namespaces, with private /run, /tmp, /etc/k0s, /var/lib/k0s, /etc/systemd/system, a fake `systemctl`,
and a small k0s DOUBLE that the real k0sctl uploads and drives like k0s (no Kubernetes runs). The
resource itself runs exactly as Concourse runs it (`k0sctl-resource check|in|out`, JSON on stdin) in a
"ctl" namespace that plays the worker; the backup repository is a local bare git repository.
Needs root (network namespaces). Everything is removed at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.k0s_node import K0sLab, K0sNode  # noqa: E402  (the test suite's k0s node)
from tests.support.netns import NetnsLab, netns_unavailable_reason  # noqa: E402

from k0sctl_resource.k0sctl.versions import PINNED_TEXT  # noqa: E402

BOLD, DIM, RESET = ("\x1b[1m", "\x1b[2m", "\x1b[0m") if sys.stdout.isatty() else ("", "", "")
CLI = str(Path(sys.executable).parent / "k0sctl-resource")
K0SCTL_VERSION = PINNED_TEXT
CLUSTER = "demo-cluster"
SECRETS: list[str] = []


def banner(text: str) -> None:
    print(f"\n{BOLD}=== {text}{RESET}", flush=True)


def masked(request: dict[str, Any]) -> str:
    """The request as shown to you: secret values replaced (they are real in what the resource gets)."""
    text = json.dumps(request, indent=2)
    for secret in SECRETS:
        text = text.replace(json.dumps(secret)[1:-1], "<secret>")
    return text


def step(lab: K0sLab, args: list[str], request: dict[str, Any], env: dict[str, str]) -> Any:
    print(f"{DIM}$ k0sctl-resource {' '.join(args)} <<'JSON'\n{masked(request)}\nJSON{RESET}", flush=True)
    proc = subprocess.run(lab.ctl.command([CLI, *args]), input=json.dumps(request).encode(), stdout=subprocess.PIPE,
                          env=env, check=False)
    answer = json.loads(proc.stdout) if proc.stdout.strip() else None
    print(f"{BOLD}answer (stdout):{RESET}", flush=True)
    if isinstance(answer, dict):
        print(f"  version  {json.dumps(answer.get('version'))}")
        for item in answer.get("metadata", []):
            print(f"  {item['name']:<18} {item['value']}")
    else:
        print(f"  {json.dumps(answer)}")
    if proc.returncode != 0:
        raise SystemExit(f"demo: step {args[0]} failed with exit code {proc.returncode}")
    return answer


def show_node(node: K0sNode, what: str) -> None:
    state = node.state()
    print(f"{BOLD}node {node.hostname}{RESET} {what}: running {node.running() or 'nothing'}, "
          f"{len(state)} files of k0s state" + (f" ({', '.join(sorted(state))})" if state else ""))


def k0sctl_bin() -> Path:
    cache = Path(os.environ.get("K0SCTL_RESOURCE_CACHE") or Path.home() / ".cache" / "k0sctl-resource")
    path = cache / "k0sctl" / K0SCTL_VERSION / "k0sctl"
    if not os.access(path, os.X_OK):
        raise SystemExit(f"demo: {path} is missing; run `bash scripts/install-k0sctl.sh {K0SCTL_VERSION}`")
    return path


def main() -> int:
    import pyrage

    reason = netns_unavailable_reason()
    if reason:
        raise SystemExit(f"demo: needs network namespaces: {reason}")
    print(f"{BOLD}DEMO{RESET}: k0sctl-resource drives the REAL k0sctl {K0SCTL_VERSION} against a k0s TEST NODE "
          "(sshd in its own namespaces, k0s is a small DOUBLE that k0sctl uploads; no Kubernetes runs).")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="k0sctl-resource-demo-") as tmp, NetnsLab() as netns:
        base = Path(tmp)
        lab = K0sLab(netns, base / "lab")
        node = lab.node("single")
        repo = base / "backups.git"
        subprocess.run(["git", "init", "-q", "--bare", str(repo)], check=True)
        identity = pyrage.x25519.Identity.generate()
        SECRETS.extend([lab.client.private, str(identity)])
        source = {"ssh_private_key": lab.client.private, "ssh_known_hosts": lab.known_hosts(),
                  "backup": {"uri": f"file://{repo}", "keep": 10},
                  "encryption": {"recipients": [str(identity.to_public())], "identities": str(identity)}}
        build = base / "build"
        (build / "config").mkdir(parents=True)
        (build / "config" / "k0sctl.yaml").write_text(lab.k0sctl_yaml(CLUSTER), encoding="utf-8")
        (base / "t").mkdir()
        env = {**os.environ, "PATH": f"{k0sctl_bin().parent}{os.pathsep}{os.environ['PATH']}",
               "TMPDIR": str(base / "t"), "BUILD_PIPELINE_NAME": "demo", "BUILD_JOB_NAME": "install",
               "BUILD_NAME": "1"}

        def put(params: dict[str, Any]) -> Any:
            return step(lab, ["out", str(build)], {"source": source, "params": params}, env)

        banner("1. put init: create the backup branch")
        put({"command": "init"})
        banner("2. put apply: k0sctl installs k0s on the node")
        put({"command": "apply", "config": "config/k0sctl.yaml"})
        show_node(node, "after apply")
        banner("3. put backup: k0sctl backup, read back, encrypt with age, commit and push")
        backup = put({"command": "backup", "config": "config/k0sctl.yaml"})
        banner("4. check: the backup branch's versions (oldest first)")
        versions = step(lab, ["check"], {"source": source}, env)
        assert versions and versions[-1] == backup["version"]
        banner("5. get: the newest backup as stored (encrypted: a get decrypts only with decrypt: true)")
        step(lab, ["in", str(build / "backup")], {"source": source, "version": versions[-1]}, env)
        for path in sorted((build / "backup").iterdir()):
            print(f"  {path.name:<20} {path.stat().st_size:>8} bytes")
        before = node.state()
        banner("6. put reset: confirmed by the cluster's name (backup_first is off: step 3 took it)")
        put({"command": "reset", "confirm": CLUSTER, "backup_first": False})
        show_node(node, "after reset")
        banner("7. put apply with restore_from: the get's archive goes back onto the rebuilt node")
        put({"command": "apply", "restore_from": "backup", "restore": "required"})
        show_node(node, "after restore")
        same = node.state() == before
        received = node.lines("restored.sha256")[-1]
        # the get wrote the archive as stored; apply decrypted it privately and checked it against the record
        got = json.loads((build / "backup" / "metadata.json").read_text(encoding="utf-8"))["sha256"]
        print(f"{BOLD}the node's k0s state is {'IDENTICAL to' if same else 'DIFFERENT from'} the state before the "
              f"reset{RESET}; k0s restore received sha256 {received[:16]}…, the backup's record "
              + ("(the same bytes)" if received == got else f"{got[:16]}… (DIFFERENT bytes)"))
        if not same or received != got:
            raise SystemExit("demo: the restore did not bring the node back")
    print(f"\n{BOLD}DEMO done{RESET} in {time.monotonic() - started:.0f} s: every step ran the real resource and "
          f"the real k0sctl; only k0s on the node was a double.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
