"""What the tests share: the harness that runs the resource as Concourse does, backup repositories, sshd,
network namespaces, k0s nodes, and the k0sctl test double. Fixtures reach the tests through
`pytest_plugins` in tests/conftest.py."""

from pathlib import Path

from k0sctl_resource.k0sctl.versions import PINNED_TEXT

ROOT = Path(__file__).resolve().parents[2]  # the repository
DOUBLE_DIR = ROOT / "tests" / "support" / "k0sctl_double"
DOUBLE = DOUBLE_DIR / "k0sctl"

PINNED = PINNED_TEXT  # the k0sctl release the image ships (src/k0sctl_resource/k0sctl/k0sctl.version)
OLDER = "v0.28.0"  # the older release the contract tests run against too
