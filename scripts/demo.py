"""DEMO of k0sctl-resource on local stand-ins (run it with `bash scripts/demo.sh`).

The stand-ins: a local sshd on 127.0.0.1 that is both the cluster's one node (for ping) and the server
of the backup repository (git over SSH, with its own key), and the k0sctl test double
(tests/support/k0sctl_double/k0sctl) in place of real k0sctl, since no k0s cluster can run here. The resource
itself runs exactly as Concourse runs it: `k0sctl-resource check|in|out` with a JSON request on stdin.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import DOUBLE_DIR  # noqa: E402
from tests.support.sshd import SshServer, bare_repo  # noqa: E402  (the same local sshd the tests use)

BOLD, DIM, RESET = ("\x1b[1m", "\x1b[2m", "\x1b[0m") if sys.stdout.isatty() else ("", "", "")
CLI = str(Path(sys.executable).parent / "k0sctl-resource")


def banner(text: str) -> None:
    print(f"\n{BOLD}=== {text}{RESET}", flush=True)


def masked(request: dict[str, Any]) -> str:
    """The request as shown to you: secret values replaced (they are real in what the resource gets)."""
    text = json.dumps(request, indent=2)
    for secret in SECRETS:
        text = text.replace(json.dumps(secret)[1:-1], "<secret>")
    return text


SECRETS: list[str] = []


def step(args: list[str], request: dict[str, Any], env: dict[str, str]) -> Any:
    print(f"{DIM}$ k0sctl-resource {' '.join(args)} <<'JSON'\n{masked(request)}\nJSON{RESET}", flush=True)
    proc = subprocess.run([CLI, *args], input=json.dumps(request).encode(), stdout=subprocess.PIPE, env=env,
                          check=False)
    answer = json.loads(proc.stdout) if proc.stdout.strip() else None
    print(f"{BOLD}answer (stdout):{RESET}", flush=True)
    if isinstance(answer, dict):
        print(f"  version  {json.dumps(answer.get('version'))}")
        for item in answer.get("metadata", []):
            print(f"  {item['name']:<16} {item['value']}")
    else:
        print(f"  {json.dumps(answer)}")
    if proc.returncode != 0:
        raise SystemExit(f"demo: step {args[0]} failed with exit code {proc.returncode}")
    return answer


def main() -> int:
    import pyrage

    print(f"{BOLD}DEMO{RESET}: k0sctl-resource against local stand-ins. k0sctl is the TEST DOUBLE "
          "(no real cluster is touched);\nthe backup repository and the node are a local sshd on 127.0.0.1.")
    with tempfile.TemporaryDirectory(prefix="k0sctl-resource-demo-") as tmp:
        base = Path(tmp)
        with SshServer(base / "sshd") as sshd:
            repo = bare_repo(base / "backups.git")
            identity = pyrage.x25519.Identity.generate()
            SECRETS.extend([sshd.client_key, str(identity)])
            source = {
                "ssh_private_key": sshd.client_key,
                "ssh_known_hosts": sshd.known_hosts,
                "backup": {"uri": sshd.url(repo), "private_key": sshd.client_key, "keep": 10},
                "encryption": {"recipients": [str(identity.to_public())], "identities": str(identity)},
            }
            build = base / "build"
            (build / "config").mkdir(parents=True)
            (build / "config" / "k0sctl.yaml").write_text(json.dumps({
                "apiVersion": "k0sctl.k0sproject.io/v1beta1", "kind": "Cluster",
                "metadata": {"name": "demo-cluster"},
                "spec": {"hosts": [{"role": "controller+worker",
                                    "ssh": {"address": sshd.host, "port": sshd.port, "user": sshd.user}}],
                         "k0s": {"version": "v1.31.2+k0s.0"}},
            }, indent=2))
            state = base / "double-state.json"
            state.write_text(json.dumps({"running": True}))  # the stand-in cluster is up
            env = {**os.environ, "PATH": f"{DOUBLE_DIR}{os.pathsep}{os.environ['PATH']}",
                   "K0SCTL_DOUBLE_STATE": str(state), "TMPDIR": str(base),
                   "BUILD_PIPELINE_NAME": "demo", "BUILD_JOB_NAME": "backup", "BUILD_NAME": "1"}

            banner("1. put init: create the backup branch")
            step(["out", str(build)], {"source": source, "params": {"command": "init"}}, env)

            banner("2. put backup: k0sctl backup, read back, encrypt with age, commit and push")
            put = step(["out", str(build)], {"source": source,
                                             "params": {"command": "backup", "config": "config/k0sctl.yaml"}}, env)

            banner("3. check: the backup branch's versions (oldest first)")
            versions = step(["check"], {"source": source}, env)
            assert versions and versions[-1] == put["version"]

            banner("4. get: the newest backup, decrypted and checked against its sha256")
            dest = base / "get"
            step(["in", str(dest)], {"source": source, "version": versions[-1]}, env)
            for path in sorted(dest.iterdir()):
                print(f"  {path.name:<20} {path.stat().st_size:>8} bytes")

            banner("5. put ping: ICMP, route and SSH-port reachability of every node")
            step(["out", str(build)], {"source": source,
                                       "params": {"command": "ping", "count": 2, "timeout": 1}}, env)
    print(f"\n{BOLD}DEMO done{RESET}: every step above ran the real resource; only k0sctl was a stand-in.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
