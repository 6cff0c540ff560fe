"""The cluster's admin kubeconfig, as `k0sctl kubeconfig` prints it, checked before anyone uses it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from k0sctl_resource.k0sctl.runner import K0sctl
from k0sctl_resource.k0sctl.versions import Invocation
from k0sctl_resource.runtime.errors import ResourceError


@dataclass(frozen=True)
class Kubeconfig:
    text: str  # secret: admin credentials; never logged
    server: str  # the API server's https URL


def admin_kubeconfig(k0sctl: K0sctl, config: Path, *, context: str = "") -> Kubeconfig:
    """Run `k0sctl kubeconfig` (its output is captured, never echoed) and check that it answered with a
    kubeconfig: clusters with an https server and users with credentials. `context` ends error messages
    (e.g. " after the restore")."""
    import yaml

    result = k0sctl.capture(Invocation("kubeconfig", config))
    if not result.ok:
        raise ResourceError(f"k0sctl kubeconfig failed{context}: {result.reason()}")
    text = "\n".join(result.lines) + "\n"
    try:
        doc = yaml.safe_load(text)
        server = doc["clusters"][0]["cluster"]["server"]
        user = doc["users"][0]["user"]
    except (yaml.YAMLError, KeyError, IndexError, TypeError):
        raise ResourceError(f"k0sctl kubeconfig answered{context}, but not with a kubeconfig "
                            "(clusters, users)") from None
    if not isinstance(server, str) or not server.startswith("https://") or not isinstance(user, dict) or not user:
        raise ResourceError(f"k0sctl kubeconfig answered{context} with a kubeconfig without an https server or "
                            "credentials")
    return Kubeconfig(text=text, server=server)
