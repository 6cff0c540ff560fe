"""put `command: backup`: a backup of the cluster, encrypted and committed to the backup branch."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from k0sctl_resource.concourse.responses import StepResponse
from k0sctl_resource.config.cluster import ClusterConfig
from k0sctl_resource.shared.backups import take_backup
from k0sctl_resource.shared.context import StepContext


@dataclass(frozen=True)
class BackupParams:
    command: Literal["backup"] = "backup"
    config: str = "config/k0sctl.yaml"
    allow_config_only: bool = False  # store an archive without a datastore (a cluster on external etcd)


def run(ctx: StepContext, params: BackupParams, cluster: ClusterConfig, directory: Path) -> StepResponse:
    return take_backup(ctx, cluster, reason="", allow_config_only=params.allow_config_only)
