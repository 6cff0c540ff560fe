"""`check`: the first-parent commits of the backup branch (README, "`check`: list the backups").

check runs every minute for every resource, so it imports only what it uses: the source's auth, the
check cache and a private workspace; not the store, not the step context (see
`gitstore.check_cache.versions_since`).
"""

from __future__ import annotations

from k0sctl_resource.concourse.requests import CheckRequest
from k0sctl_resource.concourse.responses import CheckResponse
from k0sctl_resource.config.models import Version
from k0sctl_resource.runtime import log


def run(request: CheckRequest) -> CheckResponse:
    backup = request.source.backup
    if backup is None:
        log.info("no source.backup configured: this resource has no versions")
        return CheckResponse([])
    # git is imported only when there is a repository to ask
    from k0sctl_resource.gitstore.auth import GitAuth
    from k0sctl_resource.gitstore.check_cache import versions_since
    from k0sctl_resource.gitstore.remote import Remote
    from k0sctl_resource.gitstore.runner import forget_inherited_git_env
    from k0sctl_resource.runtime.workspace import Workspace

    forget_inherited_git_env()
    with Workspace() as workspace:
        auth = GitAuth(backup, workspace, ssh_known_hosts=request.source.ssh_known_hosts)
        remote = Remote(url=auth.url, branch=backup.branch, env=auth.env, bounds=auth.bounds)
        refs = versions_since(remote, request.version, workspace.path)
    return CheckResponse([Version(ref=ref) for ref in refs])
