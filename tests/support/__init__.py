"""What the tests share: the harness that runs the resource as Concourse does, backup repositories, sshd,
network namespaces, k0s nodes, and the k0sctl test double. Fixtures reach the tests through
`pytest_plugins` in tests/conftest.py."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository
DOUBLE_DIR = ROOT / "tests" / "support" / "k0sctl_double"
DOUBLE = DOUBLE_DIR / "k0sctl"
