"""clusters.yml: defaults and overrides, derived vars, secret references, and what is refused."""

from __future__ import annotations

from typing import Any

import pytest

from k0sctl_resource.config.fleet import SECRET_VARS, listed_names, parse_fleet
from k0sctl_resource.runtime.errors import ResourceError


def doc(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "defaults": {"max_age": "2h", "vars": {"backup_repo_uri": "file:///b.git", "backup_keep": 14}},
        "clusters": [{"name": "prod-eu", "config": "clusters/prod-eu/k0sctl.yaml"},
                     {"name": "prod-us", "config": "us/k0sctl.yaml", "max_age": "1h", "max_drill_age": "24h",
                      "vars": {"backup_keep": 3, "cluster_name": "prod-us-1"}}],
    }
    base.update(extra)
    return base


def test_defaults_overrides_and_derived_vars() -> None:
    fleet = parse_fleet(doc())
    eu, us = fleet.clusters
    assert (eu.max_age, eu.max_drill_age, us.max_age, us.max_drill_age) == (7200, 8 * 86400, 3600, 86400)
    assert eu.vars["backup_keep"] == 14 and us.vars["backup_keep"] == 3
    assert eu.vars["cluster_name"] == "prod-eu" and us.vars["cluster_name"] == "prod-us-1"
    assert eu.vars["config_path"] == "clusters/prod-eu/k0sctl.yaml"
    assert eu.vars["scratch_config_path"] == "clusters/prod-eu/scratch/k0sctl.yaml"
    assert eu.vars["scratch_cluster_name"] == "prod-eu-drill"
    assert eu.backup_branch == "k0sctl-backup-prod-eu" and us.backup_branch == "k0sctl-backup-prod-us"
    assert eu.backup_uri == "file:///b.git"
    assert (eu.vars["freshness_max_age"], eu.vars["freshness_warn_age"]) == ("7200s", "6480s")
    assert us.vars["freshness_max_drill_age"] == "86400s"
    assert {v: eu.vars[v] for v in SECRET_VARS} == {v: f"((prod-eu/{v}))" for v in SECRET_VARS}
    named = parse_fleet(doc(defaults={"secrets": "k0s-{cluster}-{var}"}))
    assert named.clusters[1].vars["backup_identities"] == "((k0s-prod-us-backup_identities))"


@pytest.mark.parametrize(("change", "message"), [
    ({"clusters": []}, r"clusters: expected a list of at least one cluster"),
    ({"clusters": [{"name": "a"}, {"name": "a"}]}, r"a is listed more than once"),
    ({"clusters": [{"name": "Prod EU"}]}, r"clusters\[0\]\.name: 'Prod EU' is not a cluster name"),
    ({"clusters": [{"name": "a", "config": "../k0sctl.yaml"}]}, r"clusters\[0\]\.config"),
    ({"clusters": [{"name": "a", "maxage": "1h"}]}, r"clusters\[0\]\.maxage: unknown key \(did you mean max_age\?\)"),
    ({"clusters": [{"name": "a", "vars": {"cluster_ssh_private_key": "-----BEGIN OPENSSH"}}]},
     r"a secret's value does not belong in clusters.yml"),
    ({"clusters": [{"name": "a", "vars": {"cluster": "b"}}]}, r"vars\.cluster: reserved"),
    ({"removed": ["prod-eu"]}, r"prod-eu is both in clusters and in removed"),
    ({"defaults": {"secrets": "{cluster}"}}, r"defaults\.secrets: must contain"),
    ({"fleet": 1}, r"clusters\.yml\.fleet: unknown key"),
])
def test_refusals_name_what_is_wrong(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ResourceError, match=message):
        parse_fleet(doc(**change))


def test_a_secret_may_be_given_as_a_reference_of_its_own() -> None:
    fleet = parse_fleet(doc(clusters=[{"name": "a", "vars": {"backup_identities": "((shared/age-identity))"}}]))
    assert fleet.clusters[0].vars["backup_identities"] == "((shared/age-identity))"


def test_listed_names_reads_old_versions_leniently() -> None:
    assert listed_names({"clusters": [{"name": "a"}, {"nom": "b"}, "c", {"name": "d", "bad": 1}]}) == {"a", "d"}
    assert listed_names(None) == set() and listed_names({"clusters": "x"}) == set()
