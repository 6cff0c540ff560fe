"""config.spelling and config.endpoints: every spelling of an address is one, every hop is counted.

The forms are those that steered around the drill guard before (HostName, ProxyJump, bastions and their
options, chains, inet_aton spellings, destination forms, `$`), and hypothesis generates more of each class:
any inet_aton spelling of any IPv4 address, any IPv6 spelling, any destination wrapper, and host entries
that hide a production address at any depth of a bastion / ProxyJump chain.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from k0sctl_resource.config import cluster
from k0sctl_resource.config.endpoints import MAX_DEPTH, host_endpoints
from k0sctl_resource.config.spelling import canonical_host, resolve_names, split_destination
from k0sctl_resource.gitstore.commit_format import BackupFacts
from k0sctl_resource.runtime.errors import ResourceError
from k0sctl_resource.shared.drill_guard import check_not_production
from k0sctl_resource.shared.get_folder import FolderRecord

PROD = "192.0.2.10"
RECORD = FolderRecord("a" * 40, "backup", BackupFacts(cluster="prod", hosts=(PROD, "prod-1"),
                                                     endpoints=(PROD, "198.51.100.250")))


def no_resolver(names: Any) -> dict[str, frozenset[str]]:
    return {}


@pytest.mark.parametrize("spelled", [
    "192.0.2.10", "3221225994", "0300.0.2.10", "0xc000020a", "192.0.522", "192.000.002.012", "0xC0.0.0x2.0xa",
    "192.0.0x20a", "::ffff:192.0.2.10", "[::ffff:c000:20a]", "root@192.0.2.10",
    "ssh://root@192.0.2.10:22", "ssh://192.0.2.10", "192.0.2.10:22", "[192.0.2.10]:2222", " 192.0.2.10 ",
])
def test_every_spelling_of_one_ipv4_address_is_one(spelled: str) -> None:
    assert canonical_host(spelled) == PROD


@pytest.mark.parametrize("spelled", ["127.1", "2130706433", "0x7f000001", "0177.0.0.1", "127.000.000.001",
                                     "0.0.0.0",  # noqa: S104
                                     "::", "::1", "[::1]:22", "0:0:0:0:0:0:0:1", "localhost", "LocalHost.",
                                     "a.localhost", "root@127.0.0.1", "::ffff:127.0.0.1", "0"])
def test_the_local_host_in_every_spelling(spelled: str) -> None:
    assert canonical_host(spelled) == "localhost"


def test_names_and_destinations() -> None:
    assert canonical_host("Prod-1.Example.TEST.") == "prod-1.example.test"
    assert split_destination("ssh://deploy@[2001:db8::1]:2222") == ("deploy", "2001:db8::1", 2222)
    assert split_destination("a@b@host:22") == ("a@b", "host", 22)
    assert canonical_host("2001:DB8:0:0::1%eth0") == "2001:db8::1"
    assert canonical_host("ssh://root@::ffff:192.0.2.10:22") == PROD, "an unbracketed v6 with a port, taken whole"
    assert resolve_names(["does-not-exist.invalid"], timeout=10) == {"does-not-exist.invalid": frozenset()}


def _part(value: int, base: str, pad: int) -> str:
    """A number as inet_aton reads it: decimal (no leading zero), octal (leading zeros), hex (0x)."""
    spelled = {"d": str(value), "o": "0" * (pad + 1) + format(value, "o"), "x": "0x" + "0" * pad + format(value, "x")}
    return spelled[base]


@st.composite
def ipv4_spelling(draw: st.DrawFn) -> tuple[str, str]:
    """Any IPv4 address in any inet_aton form: 1 to 4 parts, each decimal (zero padded), octal or hex."""
    ip = draw(st.ip_addresses(v=4))
    value = int(ip)
    parts = draw(st.integers(1, 4))
    octets = list(ip.packed)
    numbers = [*octets[: parts - 1], int.from_bytes(bytes(octets[parts - 1:]), "big")]
    text = ".".join(_part(n, draw(st.sampled_from("dox")), draw(st.integers(0, 2))) for n in numbers)
    if draw(st.booleans()):
        text = text.upper().replace("0X", draw(st.sampled_from(["0x", "0X"])))
    return text, str(ipaddress.IPv4Address(value))


@given(ipv4_spelling(), st.sampled_from(["{}", "root@{}", "ssh://root@{}:22", "ssh://{}", "{}:2222", "[{}]:22"]))
def test_any_inet_aton_spelling_in_any_destination_form(case: tuple[str, str], wrapper: str) -> None:
    text, dotted = case
    ip = ipaddress.IPv4Address(dotted)
    expected = "localhost" if ip.is_loopback or ip.packed[0] == 0 else dotted
    assert canonical_host(wrapper.format(text)) == expected


@given(st.ip_addresses(v=6), st.sampled_from(["compressed", "exploded"]), st.booleans(), st.booleans())
def test_any_ipv6_spelling(ip: ipaddress.IPv6Address, form: str, upper: bool, bracket: bool) -> None:
    text = getattr(ip, form)
    text = text.upper() if upper else text
    text = f"[{text}]:22" if bracket else text
    mapped = ip.ipv4_mapped
    if mapped is not None:
        expected = canonical_host(str(mapped))
    else:
        expected = "localhost" if ip.is_loopback or ip.is_unspecified else ip.compressed
    assert canonical_host(text) == expected


# -- host entries --------------------------------------------------------------------------------------

def spelled(draw: Callable[[st.SearchStrategy[str]], str], address: str) -> str:
    return draw(st.sampled_from([address, str(int(ipaddress.IPv4Address(address))), f"::ffff:{address}",
                                 ".".join("0" + format(int(p), "o") for p in address.split("."))]))


@st.composite
def hiding_entry(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A host entry that reaches PROD somewhere: as HostName, as a ProxyJump hop, or in a bastion chain."""
    target = spelled(draw, PROD)
    depth = draw(st.integers(0, 3))
    how = draw(st.sampled_from(["HostName", "ProxyJump", "bastion"]))
    leaf: dict[str, Any] = {"address": f"hop-{depth}.example.test"}
    if how == "HostName":
        leaf["options"] = {draw(st.sampled_from(["HostName", "hostname", "HOSTNAME"])): target}
    elif how == "ProxyJump":
        jump = draw(st.sampled_from(["{}", "root@{}", "root@{}:2222", "ssh://root@{}:22"])).format(
            f"[{target}]" if ":" in target else target)
        others = ["jump.example.test"] * draw(st.integers(0, 2))
        hops = [*others[:1], jump, *others[1:]]
        leaf["options"] = {"ProxyJump": ",".join(hops)}
    else:
        leaf["bastion"] = {"address": target, "port": draw(st.integers(1, 65535))}
    for level in range(depth):  # wrap in bastions
        leaf = {"address": f"hop-{level}.example.test", "bastion": leaf}
    kind = draw(st.sampled_from(["ssh", "winRM"])) if depth else "ssh"
    return {"role": "worker", kind: leaf}, how


def parsed(*items: dict[str, Any], name: str = "scratch") -> cluster.ClusterConfig:
    doc = {"apiVersion": cluster.CLUSTER_API, "kind": "Cluster", "metadata": {"name": name},
           "spec": {"hosts": list(items)}}
    return cluster.parse_cluster(json.dumps(doc), Path("scratch.yaml"))


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(hiding_entry(), st.integers(0, 3))
def test_production_hidden_anywhere_in_an_entry_is_refused(case: tuple[dict[str, Any], str], position: int) -> None:
    entry, _ = case
    harmless = [{"role": "worker", "ssh": {"address": f"198.51.100.{i + 1}"}} for i in range(3)]
    items = [*harmless[:position], entry, *harmless[position:]]
    with pytest.raises(ResourceError, match=rf"^drill refused: spec\.hosts\[{position}\]\.\S+ .* is a host of "
                                            r"cluster 'prod'"):
        check_not_production(parsed(*items), RECORD, resolve=no_resolver)


@settings(deadline=None)
@given(st.lists(st.integers(1, 249), min_size=1, max_size=6, unique=True), st.data())
def test_hosts_that_are_not_production_pass_in_any_spelling(lasts: list[int], data: st.DataObject) -> None:
    items = []
    for last in lasts:
        address = spelled(data.draw, f"198.51.100.{last}")
        via = data.draw(st.sampled_from(["plain", "HostName", "bastion", "ProxyJump"]))
        conn: dict[str, Any] = {"address": address if via == "plain" else f"s{last}.example.test"}
        if via == "HostName":
            conn["options"] = {"HostName": address, "Port": 2222}
        elif via == "bastion":
            conn["bastion"] = {"address": address, "options": {"Port": 22}}
        elif via == "ProxyJump":
            conn["options"] = {"ProxyJump": f"root@{address}"}
        items.append({"role": "worker", "ssh": conn})
    found = check_not_production(parsed(*items), RECORD, resolve=no_resolver)
    assert len(found) == len(lasts)


@pytest.mark.parametrize(("entry", "why"), [
    ({"ssh": {"address": "s.example.test", "options": {"ProxyCommand": "nc 192.0.2.10 22"}}}, "ProxyCommand runs"),
    ({"ssh": {"address": "s.example.test", "options": {"HostName": "${PROD}"}}}, "fills in '\\$'"),
    ({"ssh": {"address": "s.example.test", "user": "$USER"}}, "fills in '\\$'"),
    ({"ssh": {"address": "s.example.test", "options": {"HostName": "%n.example"}}}, "% token"),
    ({"winRM": {"address": "s.example.test", "bastion": {"address": "b", "options": {"ProxyCommand": "x"}}}},
     "ProxyCommand"),
])
def test_what_cannot_be_known_is_refused(entry: dict[str, Any], why: str) -> None:
    with pytest.raises(ResourceError, match=rf"^drill refused: spec\.hosts\[0\].*{why}"):
        check_not_production(parsed({"role": "worker", **entry}), RECORD, resolve=no_resolver)


def test_a_chain_deeper_than_the_bound_is_refused() -> None:
    leaf: dict[str, Any] = {"address": "198.51.100.1"}
    for _ in range(MAX_DEPTH + 2):
        leaf = {"address": "198.51.100.2", "bastion": leaf}
    with pytest.raises(ResourceError, match="more than 8 bastions"):
        check_not_production(parsed({"role": "worker", "ssh": leaf}), RECORD, resolve=no_resolver)


def test_every_hop_is_listed_with_where_it_was_written() -> None:
    options = {"HostName": "%h.lan", "Port": 2200, "ProxyJump": "a@j1:2,j2"}
    entry = {"role": "worker", "ssh": {"address": "scratch-1", "port": 22, "options": options}}
    hops = [(h.where, h.host, h.port) for h in host_endpoints(0, entry).hops]
    assert hops == [("spec.hosts[0].ssh.address", "scratch-1", 2200),
                    ("spec.hosts[0].ssh.options.HostName", "scratch-1.lan", 2200),
                    ("spec.hosts[0].ssh.options.ProxyJump", "j1", 2),
                    ("spec.hosts[0].ssh.options.ProxyJump", "j2", 22)]


def test_a_recorded_alias_is_compared_by_what_it_resolves_to() -> None:
    """The backup recorded `prod-1` (reached with options.HostName); the scratch config names the IP."""
    record = FolderRecord("a" * 40, "backup", BackupFacts(cluster="prod", hosts=("prod-1",), endpoints=("prod-1",)))

    def resolver(names: Any) -> dict[str, frozenset[str]]:
        return {n: frozenset({PROD}) if n == "prod-1" else frozenset() for n in names}

    written = r"spec\.hosts\[0\]\.ssh\.address 0300\.0\.2\.10 \(reached as 192\.0\.2\.10\) is"
    with pytest.raises(ResourceError, match=written):
        check_not_production(parsed({"role": "worker", "ssh": {"address": "0300.0.2.10"}}), record, resolve=resolver)
    with pytest.raises(ResourceError, match=r"ssh\.options\.HostName scratch-1 \(reached as 192\.0\.2\.10\) is"):
        check_not_production(parsed({"role": "worker", "ssh": {"address": "x", "options": {"HostName": "scratch-1"}}}),
                             record, resolve=lambda names: {n: frozenset({PROD}) for n in names if n != "x"})


def test_ssh_g_decides_for_openssh_hosts(tmp_path: Path) -> None:
    """A real `ssh -G` (no connection) with the host's configPath: an alias whose HostName is production."""
    from k0sctl_resource.k0sctl.ssh_config import ssh_g

    config = tmp_path / "ssh_config"
    config.write_text("Host scratch-*\n  HostName 3221225994\n  ProxyJump jump-1\n"
                      "Host jump-*\n  HostName 198.51.100.9\n", encoding="utf-8")
    entry = {"role": "worker", "openSSH": {"address": "scratch-1", "configPath": str(config)}}
    found = host_endpoints(0, entry, ssh_g)
    assert {h.canonical for h in found.hops} >= {"scratch-1", PROD, "198.51.100.9"}
    with pytest.raises(ResourceError, match=r"^drill refused: spec\.hosts\[0\]\.openSSH \(ssh -G hostname\) "
                                            r"192\.0\.2\.10 is a host"):
        check_not_production(parsed(entry), RECORD, ssh_g=ssh_g, resolve=no_resolver)
    bad = {"role": "worker", "openSSH": {"address": "scratch-1", "options": {"NoSuchOption": "1"}}}
    with pytest.raises(ResourceError, match=r"ssh -G cannot read it"):
        check_not_production(parsed(bad), RECORD, ssh_g=ssh_g, resolve=no_resolver)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_openssh_entries_hiding_production_are_refused_through_real_ssh_g(data: st.DataObject) -> None:
    """`openSSH` hosts go through a real `ssh -G` (no connection): HostName, ProxyJump (with a user, a port,
    a list) or a destination form in the address, with production in any spelling."""
    from k0sctl_resource.k0sctl.ssh_config import ssh_g

    target = spelled(data.draw, PROD)
    bracketed = f"[{target}]" if ":" in target else target
    how = data.draw(st.sampled_from(["HostName", "ProxyJump", "address"]))
    conn: dict[str, Any] = {"address": "scratch-1.example.test"}
    if how == "HostName":
        conn["options"] = {"HostName": target, "Port": data.draw(st.integers(1, 65535))}
    elif how == "ProxyJump":
        jump = data.draw(st.sampled_from(["{}", "root@{}", "root@{}:2222", "ssh://root@{}:22"])).format(bracketed)
        conn["options"] = {"ProxyJump": ",".join(data.draw(st.permutations([jump, "jump.example.test"])))}
    else:
        form = data.draw(st.sampled_from(["{}", "root@{}", "ssh://root@{}:22"]))
        conn["address"] = form.format(bracketed if "//" in form else target)
        if data.draw(st.booleans()):
            conn["user"] = "deploy"
    with pytest.raises(ResourceError, match=r"^drill refused: spec\.hosts\[0\]\.openSSH.* is a host of cluster"):
        check_not_production(parsed({"role": "worker", "openSSH": conn}), RECORD, ssh_g=ssh_g, resolve=no_resolver)
