"""The command-line interface beyond the fast path: help, --version, ping and kubeconfig (click)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click

from k0sctl_resource import __version__
from k0sctl_resource.cli.dispatch import run_concourse_step
from k0sctl_resource.concourse.runner import finish
from k0sctl_resource.runtime.errors import ResourceError


class _Group(click.Group):
    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_paragraph()
        formatter.write_text("The Concourse steps read one JSON request on stdin and print one JSON "
                             "answer on stdout; logs go to stderr.")


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return

    from k0sctl_resource.k0sctl.runner import find_binary
    from k0sctl_resource.k0sctl.versions import K0sctlVersion

    line = f"k0sctl-resource {__version__}"
    try:
        binary = find_binary()
        proc = subprocess.run([binary, "version"], capture_output=True, text=True, timeout=30, check=False)
        found = K0sctlVersion.parse(proc.stdout) if proc.returncode == 0 else None
        line += f"\nk0sctl {found} ({binary})" if found else f"\nk0sctl: {binary} version failed"
    except ResourceError:
        line += "\nk0sctl: not found on PATH"
    click.echo(line)
    ctx.exit(0)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, callback=_print_version, expose_value=False, is_eager=True,
              help="Print this tool's version and the k0sctl version it finds.")
def group() -> None:
    """Drive k0sctl from Concourse: install, back up, restore, reset and ping k0s clusters."""


@group.command()
def check() -> None:
    """Concourse check: list the backup branch's versions."""
    finish(run_concourse_step("check"))


@group.command(name="in")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def in_(directory: Path) -> None:
    """Concourse get: write metadata.json (and the archive) into DIRECTORY."""
    finish(run_concourse_step("in", directory))


def _out_help() -> str:
    """The help of `out`, from the command registry: one line per put command."""
    from k0sctl_resource.commands import COMMANDS

    width = max(len(name) for name in COMMANDS)
    lines = [f"  {name:<{width}}  {info.summary}" for name, info in COMMANDS.items()]
    return "Concourse put: run params.command, one of:\n\n\b\n" + "\n".join(lines)


@group.command(help=_out_help())
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
def out(directory: Path) -> None:
    finish(run_concourse_step("out", directory))


@group.command()
@click.option("-c", "--config", "config", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The k0sctl config (k0sctl.yaml).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON (for machines).")
@click.option("--count", default=3, show_default=True, help="ICMP echo requests per host.")
@click.option("--timeout", default=2.0, show_default=True, help="Seconds to wait for each answer.")
@click.option("--no-traceroute", is_flag=True, help="Skip the route report.")
@click.option("--extra-port", "extra_ports", multiple=True, type=int,
              help="Also probe this TCP port on controllers (repeatable), e.g. 6443.")
def ping(config: Path, as_json: bool, count: int, timeout: float, no_traceroute: bool,
         extra_ports: tuple[int, ...]) -> None:
    """Reachability of every host of a k0sctl config: ICMP, route, and the SSH/WinRM port."""
    from k0sctl_resource.cli.tools import ping_tool

    sys.exit(ping_tool(config, as_json=as_json, count=count, timeout=timeout,
                       traceroute=not no_traceroute, extra_ports=extra_ports))


@group.command()
@click.option("-c", "--config", "config", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The k0sctl config (k0sctl.yaml).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the kubeconfig to this file (mode 0600) instead of stdout.")
@click.option("--source", "source_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A JSON file with the resource's source (for ssh_private_key and k0sctl options).")
def kubeconfig(config: Path, output: Path | None, source_file: Path | None) -> None:
    """Print the cluster's admin kubeconfig (for downstream tasks)."""
    from k0sctl_resource.cli.tools import kubeconfig_tool

    finish(kubeconfig_tool(config, output, source_file))


@group.command(name="fleet-status")
@click.option("-f", "--file", "clusters_file", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The fleet's clusters.yml.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON (for machines).")
def fleet_status(clusters_file: Path, as_json: bool) -> None:
    """Every cluster's newest backup and last drill; exit 1 when any is stale, unreachable or undrilled.

    Credentials for the backup repositories come from the environment (K0SCTL_FLEET_BACKUP_PRIVATE_KEY,
    K0SCTL_FLEET_BACKUP_USERNAME, K0SCTL_FLEET_BACKUP_PASSWORD, each also as ..._FILE)."""
    from k0sctl_resource.cli.tools import fleet_status_tool

    finish(fleet_status_tool(clusters_file, as_json=as_json))


@group.command(name="fleet-vars")
@click.option("-f", "--file", "clusters_file", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The fleet's clusters.yml (at the top of the config repository's checkout).")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory for clusters.json and vars/<cluster>.yml.")
@click.option("--pipeline", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The pipeline template (pipeline/pipeline.yml): every var it uses must be set for every cluster.")
def fleet_vars(clusters_file: Path, output: Path, pipeline: Path | None) -> None:
    """The parent pipeline's vars files, one per cluster; refuses a cluster removed by accident."""
    from k0sctl_resource.cli.tools import fleet_vars_tool

    finish(fleet_vars_tool(clusters_file, output, pipeline))
