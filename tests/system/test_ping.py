"""The ping probe against real hosts in network namespaces.

Lab (built once per module, removed afterwards)::

    client  192.0.2.10  --+                      +-- node "open"    198.51.100.10  (tcp/22, tcp/6443)
    client2 192.0.2.11  --+-- router 192.0.2.1 --+-- node "closed"  198.51.100.11  (nothing listens)
                          |   198.51.100.1       +   198.51.100.99: no host at all

The probe itself runs inside a client namespace (``ip netns exec``), so none of its packets can
leave through this machine's own interfaces. The router does not rate-limit ICMP errors
(icmp_ratemask 0), so the loss figures of the route report are exact.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from k0sctl_resource.ping import TRAILING_UNKNOWN_HOPS, PingOptions, PingReport
from k0sctl_resource.ping.report import metadata_facts, render_table
from k0sctl_resource.runtime.errors import ResourceError
from tests.support import ROOT
from tests.support.netns import Namespace, NetnsLab, cleanup_stale, lab_or_skip

pytestmark = pytest.mark.netns

ROUTER_CLIENT_SIDE = "192.0.2.1"
ROUTER_SERVER_SIDE = "198.51.100.1"
CLIENT = "192.0.2.10"
CLIENT2 = "192.0.2.11"
CLIENT3 = "192.0.2.12"
OPEN = "198.51.100.10"
CLOSED = "198.51.100.11"
ABSENT = "198.51.100.99"
NOBODY = 65534

# Runs inside a namespace: reads {"config": yaml text, "options": {...}} on stdin, probes, and
# prints the report (JSON), the table and the metadata as one JSON document.
PROBE_CHILD = """
import json, sys, time
from pathlib import Path
from k0sctl_resource import ping
from k0sctl_resource.config.cluster import parse_cluster
from k0sctl_resource.ping import report as ping_report
request = json.load(sys.stdin)
options = dict(request["options"])
if options.get("ssh_config"):
    options["ssh_config"] = Path(options["ssh_config"])
config = parse_cluster(request["config"], Path("k0sctl.yaml"))
started = time.monotonic()
report = ping.probe_cluster(config, ping.PingOptions(**options))
wall = time.monotonic() - started
print(json.dumps({"report": report.to_json(), "table": ping_report.render_table(report),
                  "metadata": ping_report.metadata_facts(report), "wall_s": wall,
                  "unreachable": [h.name for h in report.unreachable()]}))
"""

LISTENER = """
import selectors, socket, sys
log = open(sys.argv[1], "a", buffering=1)
sel = selectors.DefaultSelector()
for port in map(int, sys.argv[2:]):
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("::", port))
    s.listen(512)
    sel.register(s, selectors.EVENT_READ)
while True:
    for key, _ in sel.select():
        conn, peer = key.fileobj.accept()
        log.write(f"{key.fileobj.getsockname()[1]} {peer[0]}\\n")
        conn.close()
"""


@dataclass
class NodeSpec:
    name: str
    addresses: list[str]
    ports: list[int] = field(default_factory=list)


@dataclass
class PingLab:
    """The namespaces of a ping lab and the connection logs of its listeners."""

    lab: NetnsLab
    router: Namespace
    clients: dict[str, Namespace]
    nodes: dict[str, Namespace]
    logs: dict[str, Path]

    def connections(self, node: str) -> list[tuple[int, str]]:
        """(port, peer address) of every connection the node's listener accepted so far."""
        text = self.logs[node].read_text() if self.logs[node].exists() else ""
        out = []
        for line in text.splitlines():
            port, peer = line.split()
            out.append((int(port), peer.removeprefix("::ffff:")))
        return out

    def add_client(self, name: str, address: str, nameserver: str = "127.0.0.1",
                   resolver_timeout: int = 3) -> Namespace:
        """A client namespace on 192.0.2.0/24 behind the router, with private name resolution.

        With the default nameserver nothing answers on port 53, so names that are not in the
        namespace's hosts file fail at once; an address where nobody answers makes them hang.
        """
        ns = self.lab.namespace(name)
        dev = f"c{len(self.clients)}"
        self.lab.veth(self.router, dev, ns, "eth0")
        self.router.attach(dev, "brc")
        ns.add_address("eth0", f"{address}/24")
        ns.add_route("default", via=ROUTER_CLIENT_SIDE)
        ns.write_etc("hosts", "127.0.0.1 localhost\n::1 localhost ip6-localhost\n"
                              f"{OPEN} node-open.lab.test\n::1 v6only.lab.test\n")
        ns.write_etc("resolv.conf", f"nameserver {nameserver}\noptions timeout:{resolver_timeout} attempts:1\n")
        self.clients[name] = ns
        return ns


def build_ping_lab(lab: NetnsLab, nodes: Sequence[NodeSpec], log_dir: Path,
                   clients: Sequence[tuple[str, str]] = (("client", CLIENT),)) -> PingLab:
    """Router between 192.0.2.0/24 (clients) and 198.51.100.0/24 (nodes); listeners on the nodes."""
    router = lab.namespace("router", forwarding=True)
    router.sysctl("net.ipv4.icmp_ratemask", "0")  # exact loss figures for the router hop
    router.add_bridge("brc")
    router.add_address("brc", f"{ROUTER_CLIENT_SIDE}/24")
    router.add_bridge("brs")
    router.add_address("brs", f"{ROUTER_SERVER_SIDE}/24")
    ping_lab = PingLab(lab=lab, router=router, clients={}, nodes={}, logs={})
    for name, address in clients:
        ping_lab.add_client(name, address)
    for i, spec in enumerate(nodes):
        ns = lab.namespace(spec.name)
        lab.veth(router, f"s{i}", ns, "eth0")
        router.attach(f"s{i}", "brs")
        for address in spec.addresses:
            ns.add_address("eth0", f"{address}/24")
        ns.add_route("default", via=ROUTER_SERVER_SIDE)
        log = log_dir / f"{spec.name}.log"
        ping_lab.logs[spec.name] = log
        ping_lab.nodes[spec.name] = ns
        if spec.ports:
            proc = ns.spawn([sys.executable, "-c", LISTENER, str(log), *map(str, spec.ports)])
            for port in spec.ports:
                ns.wait_listening(port, process=proc)
    return ping_lab


def run_probe(ns: Namespace, config: str, options: dict[str, Any], *, uid: int | None = None,
              ) -> dict[str, Any]:
    """Run probe_cluster inside ``ns`` (as ``uid`` when given) and return its outputs."""
    argv = [sys.executable, "-c", PROBE_CHILD]
    if uid is not None:
        argv = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--no-new-privs",
                "--inh-caps=-all", *argv]
    proc = ns.run(argv, input=json.dumps({"config": config, "options": options}), timeout=120,
                  env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONDONTWRITEBYTECODE": "1",
                       "LANG": "C.UTF-8"})
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def cluster_yaml(*hosts: str) -> str:
    return ("apiVersion: k0sctl.k0sproject.io/v1beta1\nkind: Cluster\nmetadata:\n  name: lab\n"
            "spec:\n  hosts:\n" + "".join(hosts))


def ssh_host(address: str, role: str = "worker", port: int = 22, bastion: str | None = None) -> str:
    text = f"  - role: {role}\n    ssh:\n      address: \"{address}\"\n      port: {port}\n"
    if bastion:
        text += f"      bastion:\n        address: {bastion}\n        user: root\n"
    return text


LOCALHOST = "  - role: worker\n    localhost:\n      enabled: true\n"

# Short timeouts keep the module fast: 3 echoes 0.1s apart, 0.5s for every answer.
FAST: dict[str, Any] = {"count": 3, "timeout": 0.5, "interval": 0.1}
BOUND = FAST["timeout"] + (FAST["count"] - 1) * FAST["interval"]


@pytest.fixture(scope="module")
def ping_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PingLab]:
    lab = lab_or_skip()
    with lab:
        log_dir = tmp_path_factory.mktemp("ping-lab")
        built = build_ping_lab(lab, [NodeSpec("open", [OPEN], [22, 6443]), NodeSpec("closed", [CLOSED])],
                               log_dir, clients=[("client", CLIENT), ("client2", CLIENT2)])
        # client2 may use unprivileged ICMP (kernel ping sockets) for every group.
        built.clients["client2"].sysctl("net.ipv4.ping_group_range", "0 2147483647")
        # client3's DNS server is an address where nobody answers: lookups hang.
        built.add_client("client3", CLIENT3, nameserver=ABSENT, resolver_timeout=30)
        # Nobody answers at ABSENT, and nothing else does either: without this entry the router would
        # look its address up (ARP) and, when that fails about 3 s later, send Host Unreachable for
        # every packet queued meanwhile, an earlier test's included; one landing within a later
        # probe's timeout showed the router as a hop past itself (seen on loaded machines).
        built.router.run(["ip", "neigh", "replace", ABSENT, "lladdr", "02:00:00:00:00:63", "dev", "brs",
                          "nud", "permanent"])
        yield built


def hosts_by_name(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {h["name"]: h for h in result["report"]["hosts"]}


def route_addresses(host: dict[str, Any]) -> list[str | None]:
    return [hop["address"] for hop in host["route"]["hops"]]


def test_open_closed_and_absent_hosts(ping_lab: PingLab) -> None:
    before = ping_lab.connections("open")
    config = cluster_yaml(ssh_host(OPEN, "controller+worker"), ssh_host(CLOSED), ssh_host(ABSENT),
                          LOCALHOST)
    result = run_probe(ping_lab.clients["client"], config, {**FAST, "extra_ports": [6443, 9443]})
    report = result["report"]
    assert report["icmp_mode"] == "privileged"
    assert report["notices"] == []
    assert report["summary"] == {"hosts": 4, "probed": 3, "reachable": 1, "unreachable": 2, "skipped": 1}
    hosts = hosts_by_name(result)

    ok = hosts[f"{OPEN}:22"]
    assert ok["status"] == "reachable" and ok["error"] is None
    assert ok["tcp"]["open"] is True and 0 < ok["tcp"]["latency_ms"] < 500
    assert ok["icmp"]["sent"] == 3 and ok["icmp"]["received"] == 3 and ok["icmp"]["loss_pct"] == 0.0
    assert 0 < ok["icmp"]["min_ms"] <= ok["icmp"]["avg_ms"] <= ok["icmp"]["max_ms"] < 500
    assert ok["route"]["reached"] is True
    assert route_addresses(ok) == [ROUTER_CLIENT_SIDE, OPEN]
    for hop in ok["route"]["hops"]:
        assert hop["sent"] == 3 and hop["received"] == 3 and hop["loss_pct"] == 0.0
        assert 0 < hop["best_ms"] <= hop["avg_ms"] <= hop["worst_ms"]
    assert [(p["port"], p["open"], p["error"]) for p in ok["extra_ports"]] == [
        (6443, True, None), (9443, False, "connection refused")]

    closed = hosts[f"{CLOSED}:22"]
    assert closed["status"] == "unreachable"
    assert closed["tcp"] == {"port": 22, "open": False, "latency_ms": closed["tcp"]["latency_ms"],
                             "error": "connection refused"}
    assert closed["error"] == "tcp/22 connection refused"
    assert closed["icmp"]["received"] == 3  # the machine is up, only the port is closed
    assert route_addresses(closed) == [ROUTER_CLIENT_SIDE, CLOSED]
    assert closed["extra_ports"] == []  # extra ports are for controllers only

    absent = hosts[f"{ABSENT}:22"]
    assert absent["status"] == "unreachable"
    assert absent["tcp"]["open"] is False and absent["tcp"]["error"] == "no answer within 0.5s"
    assert absent["icmp"]["sent"] == 3 and absent["icmp"]["received"] == 0
    assert absent["icmp"]["loss_pct"] == 100.0 and absent["icmp"]["max_ms"] is None
    assert absent["route"]["reached"] is False
    hops = absent["route"]["hops"]
    assert hops[0]["address"] == ROUTER_CLIENT_SIDE and hops[0]["loss_pct"] == 0.0
    assert len(hops) == 1 + TRAILING_UNKNOWN_HOPS
    for hop in hops[1:]:
        assert hop["address"] is None and hop["loss_pct"] == 100.0 and hop["best_ms"] is None

    skipped = hosts["host[3]"]
    assert skipped["status"] == "skipped" and skipped["tcp"] is None and skipped["icmp"] is None

    assert result["unreachable"] == [f"{CLOSED}:22", f"{ABSENT}:22"]
    # One connect per port, from the client namespace: the probe really ran in there.
    assert ping_lab.connections("open")[len(before):] == [(22, CLIENT), (6443, CLIENT)]
    # Bounded by the probe's own timeouts, not by the kernel's (a connect to the absent host would retry
    # for about two minutes); generous, so that a loaded machine does not fail it.
    assert result["wall_s"] < BOUND + 5, result["wall_s"]
    assert report["stats"]["targets"] == 3 and report["stats"]["tcp_connects"] == 5


def test_table_and_json_rendering(ping_lab: PingLab) -> None:
    config = cluster_yaml(ssh_host(OPEN, "controller"), ssh_host(ABSENT), LOCALHOST)
    result = run_probe(ping_lab.clients["client"], config, {**FAST, "extra_ports": [6443]})
    data = result["report"]

    # JSON: serialisable as is, and rebuilding the report gives the same document.
    rebuilt = PingReport.from_json(json.loads(json.dumps(data)))
    assert rebuilt.to_json() == data
    assert [h.name for h in rebuilt.unreachable()] == [f"{ABSENT}:22"]
    assert rebuilt.unreachable()[0].label == f"{ABSENT}:22 (worker)"
    assert rebuilt.unreachable()[0].describe() == f"{ABSENT}:22 (worker): tcp/22 no answer within 0.5s"

    table = result["table"]
    assert table == render_table(rebuilt)  # rendering depends on the report only
    lines = table.splitlines()
    assert lines[0].startswith("ping: 3 hosts: 1 reachable, 1 unreachable, 1 skipped | icmp privileged")
    blocks = table.split("\n\n")
    assert len(blocks) == 4
    open_block, absent_block, local_block = blocks[1], blocks[2], blocks[3]
    assert open_block.splitlines()[0] == f"host[0]  {OPEN}:22  controller  ssh  REACHABLE"
    assert "tcp/22 open, " in open_block and "tcp/6443 open" in open_block
    assert "3 sent, 3 received, 0.0% loss, rtt min/avg/max" in open_block
    route = [line for line in open_block.splitlines() if ".|-- " in line]
    assert [line.split()[1] for line in route] == [ROUTER_CLIENT_SIDE, OPEN]
    # mtr-like columns line up: Loss% of every hop ends in the same column as the header.
    header = next(line for line in open_block.splitlines() if "Loss%" in line)
    end = header.index("Loss%") + len("Loss%")
    for line in route:
        assert line[end - 1] == "%" and line[end - 6:end] == "  0.0%"
    assert absent_block.splitlines()[0] == f"host[1]  {ABSENT}:22  worker  ssh  UNREACHABLE"
    assert "tcp/22 no answer within 0.5s" in absent_block
    assert "3 sent, 0 received, 100.0% loss" in absent_block
    unknown = [line for line in absent_block.splitlines() if "???" in line]
    assert len(unknown) == TRAILING_UNKNOWN_HOPS and all("100.0%" in line for line in unknown)
    assert "(destination not reached)" in absent_block
    assert local_block.splitlines()[0] == "host[2]  worker  localhost  SKIPPED"

    meta = result["metadata"]
    assert meta == metadata_facts(rebuilt)
    assert all(isinstance(v, str) for v in meta.values())
    assert meta["hosts"] == "3" and meta["probed"] == "2" and meta["skipped"] == "1"
    assert meta["reachable"] == "1" and meta["unreachable"] == "1"
    assert meta["unreachable_hosts"] == f"{ABSENT}:22"
    assert meta["icmp_mode"] == "privileged"
    assert meta["worst_rtt_host"] == f"{OPEN}:22"
    assert float(meta["worst_rtt_ms"]) == data["hosts"][0]["icmp"]["max_ms"]
    assert meta["max_loss_pct"] == "100.0"


def test_hosts_behind_one_bastion_are_probed_once(ping_lab: PingLab) -> None:
    before = ping_lab.connections("open")
    config = cluster_yaml(
        ssh_host("10.255.0.1", "controller", bastion=OPEN),
        ssh_host("10.255.0.2", bastion=OPEN),
        ssh_host("10.255.0.3", bastion=OPEN),
    )
    result = run_probe(ping_lab.clients["client"], config, {**FAST, "extra_ports": [6443]})
    report = result["report"]
    assert report["stats"]["targets"] == 1 and report["stats"]["tcp_connects"] == 1
    # 3 echoes + 3 trace rounds: the first sends TTL 1..30, later ones stop at the known distance.
    assert report["stats"]["icmp_requests"] < 3 + 30 * 3
    assert ping_lab.connections("open")[len(before):] == [(22, CLIENT)]
    hosts = report["hosts"]
    assert [h["name"] for h in hosts] == ["10.255.0.1:22", "10.255.0.2:22", "10.255.0.3:22"]
    for host in hosts:
        assert host["status"] == "reachable"
        assert host["target"] == {"address": OPEN, "port": 22, "protocol": "ssh", "via": "bastion",
                                  "hostname": OPEN, "ip": OPEN}
        assert host["tcp"] == hosts[0]["tcp"] and host["icmp"] == hosts[0]["icmp"]
        assert route_addresses(host) == [ROUTER_CLIENT_SIDE, OPEN]
    assert hosts[0]["extra_ports"] == []
    assert any("extra ports not probed" in n for n in hosts[0]["notes"])
    assert f"\n  via    bastion {OPEN}:22\n" in result["table"]
    report_obj = PingReport.from_json(report)
    assert report_obj.hosts[1].describe() == f"10.255.0.2:22 (worker) via bastion {OPEN}:22"


def test_names_loopback_and_ipv6(ping_lab: PingLab) -> None:
    client = ping_lab.clients["client"]
    log = ping_lab.logs["open"].with_name("client-loopback.log")
    proc = client.spawn([sys.executable, "-c", LISTENER, str(log), "2222"])
    client.wait_listening(2222, process=proc)
    try:
        config = cluster_yaml(ssh_host("node-open.lab.test"), ssh_host("missing.lab.test"),
                              ssh_host("127.0.0.1", port=2222), ssh_host("v6only.lab.test", port=2222),
                              ssh_host("::1", port=2223))
        result = run_probe(client, config, FAST)
    finally:
        proc.terminate()
        proc.wait(timeout=5)
    hosts = hosts_by_name(result)
    named = hosts["node-open.lab.test:22"]
    assert named["status"] == "reachable" and named["target"]["ip"] == OPEN
    assert route_addresses(named) == [ROUTER_CLIENT_SIDE, OPEN]
    assert f"node-open.lab.test resolves to {OPEN}" in named["notes"]

    missing = hosts["missing.lab.test:22"]
    assert missing["status"] == "unreachable"
    assert missing["error"].startswith("missing.lab.test does not resolve: ")
    assert missing["tcp"] is None and missing["icmp"] is None and missing["target"]["ip"] is None

    loop4 = hosts["127.0.0.1:2222"]
    assert loop4["status"] == "reachable" and loop4["icmp"]["received"] == 3
    assert route_addresses(loop4) == ["127.0.0.1"]

    v6 = hosts["v6only.lab.test:2222"]
    assert v6["target"]["ip"] == "::1" and v6["status"] == "reachable"
    assert v6["icmp"]["received"] == 3 and route_addresses(v6) == ["::1"]

    closed6 = hosts["[::1]:2223"]
    assert closed6["status"] == "unreachable" and closed6["tcp"]["error"] == "connection refused"
    assert result["unreachable"] == ["missing.lab.test:22", "[::1]:2223"]


def test_slow_name_resolution_is_bounded_by_the_timeout(ping_lab: PingLab) -> None:
    config = cluster_yaml(ssh_host("slow.lab.test"), ssh_host(OPEN))
    result = run_probe(ping_lab.clients["client3"], config, FAST)
    hosts = hosts_by_name(result)
    slow = hosts["slow.lab.test:22"]
    assert slow["status"] == "unreachable"
    assert slow["error"] == "slow.lab.test: name resolution did not finish within 0.5s"
    assert hosts[f"{OPEN}:22"]["status"] == "reachable"
    # resolution (0.5s) + one probe round (BOUND), not the resolver's own 30s timeout
    assert result["wall_s"] < FAST["timeout"] + BOUND + 10, result["wall_s"]


def test_openssh_aliases_follow_ssh_config(ping_lab: PingLab, tmp_path: Path) -> None:
    ssh_config = tmp_path / "ssh_config"
    ssh_config.write_text(
        f"Host alias-open\n  HostName {OPEN}\n  Port 6443\n"
        f"Host behind-jump\n  HostName 10.255.0.9\n  ProxyJump jumphost\n"
        f"Host jumphost\n  HostName {CLOSED}\n")
    config = cluster_yaml(
        "  - role: worker\n    openSSH:\n      address: alias-open\n",
        "  - role: worker\n    openSSH:\n      address: behind-jump\n",
    )
    result = run_probe(ping_lab.clients["client"], config, {**FAST, "ssh_config": str(ssh_config)})
    hosts = result["report"]["hosts"]
    alias = hosts[0]
    assert alias["target"] == {"address": "alias-open", "port": 6443, "protocol": "openSSH", "via": None,
                               "hostname": OPEN, "ip": OPEN}
    assert alias["status"] == "reachable" and alias["tcp"]["port"] == 6443
    jump = hosts[1]
    assert jump["target"]["via"] == "proxyjump" and jump["target"]["ip"] == CLOSED
    assert jump["status"] == "unreachable" and jump["error"] == "tcp/22 connection refused"


def test_without_icmp_permission_reports_tcp_alone(ping_lab: PingLab) -> None:
    client = ping_lab.clients["client"]
    assert client.read_sysctl("net.ipv4.ping_group_range").split() == ["1", "0"]
    config = cluster_yaml(ssh_host(OPEN, "controller"), ssh_host(CLOSED), ssh_host(ABSENT))
    result = run_probe(client, config, {**FAST, "extra_ports": [6443]}, uid=NOBODY)
    report = result["report"]
    assert report["icmp_mode"] == "none"
    assert len(report["notices"]) == 1
    notice = report["notices"][0]
    assert notice.startswith("icmp: unavailable (no permission: raw ICMP sockets need root or CAP_NET_RAW")
    assert "net.ipv4.ping_group_range is '1 0'" in notice
    assert notice.endswith("); reporting the TCP probe alone")
    assert report["stats"]["icmp_requests"] == 0
    hosts = hosts_by_name(result)
    for host in hosts.values():
        assert host["icmp"] is None and host["route"] is None
    assert hosts[f"{OPEN}:22"]["status"] == "reachable"
    assert hosts[f"{OPEN}:22"]["extra_ports"][0]["open"] is True
    assert hosts[f"{CLOSED}:22"]["error"] == "tcp/22 connection refused"
    assert hosts[f"{ABSENT}:22"]["error"] == "tcp/22 no answer within 0.5s"
    assert result["table"].splitlines()[1] == notice
    meta = result["metadata"]
    assert meta["icmp_mode"] == "none" and meta["worst_rtt_ms"] == "" and meta["max_loss_pct"] == ""
    assert meta["unreachable_hosts"] == f"{CLOSED}:22,{ABSENT}:22"
    assert result["wall_s"] < FAST["timeout"] + 5  # the probe's own timeout, not the kernel's connect retries


def test_unprivileged_icmp_traces_through_the_error_queue(ping_lab: PingLab) -> None:
    config = cluster_yaml(ssh_host(OPEN), ssh_host(ABSENT))
    result = run_probe(ping_lab.clients["client2"], config, FAST, uid=NOBODY)
    report = result["report"]
    assert report["icmp_mode"] == "unprivileged" and report["notices"] == []
    hosts = hosts_by_name(result)
    ok = hosts[f"{OPEN}:22"]
    assert ok["icmp"]["received"] == 3
    assert route_addresses(ok) == [ROUTER_CLIENT_SIDE, OPEN]
    assert all(hop["received"] == 3 for hop in ok["route"]["hops"])
    absent = hosts[f"{ABSENT}:22"]
    assert absent["icmp"]["received"] == 0
    assert route_addresses(absent) == [ROUTER_CLIENT_SIDE] + [None] * TRAILING_UNKNOWN_HOPS


def test_options_are_validated() -> None:
    for bad in (PingOptions(count=0), PingOptions(timeout=0), PingOptions(extra_ports=[70000]),
                PingOptions(extra_ports=[True]), PingOptions(max_hops=0)):
        with pytest.raises(ResourceError, match=r"^ping: "):
            bad.validate()
    PingOptions().validate()


# -- the namespace helper itself -------------------------------------------------------------------


def _netns_names() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def test_lab_close_removes_namespaces_files_and_processes() -> None:
    lab = lab_or_skip()
    with lab:
        ns = lab.namespace("tmp")
        hosts = ns.write_etc("hosts", "127.0.0.1 localhost\n")
        proc = ns.spawn(["sleep", "60"])
        assert ns.name in _netns_names() and hosts.exists() and proc.poll() is None
        assert ns.run(["cat", "/etc/hosts"]).stdout == "127.0.0.1 localhost\n"
    assert ns.name not in _netns_names()
    assert not hosts.parent.exists()
    assert proc.returncode is not None


def test_cleanup_stale_removes_labs_of_killed_runs() -> None:
    lab_or_skip().close()
    code = ("import sys, time; sys.path.insert(0, sys.argv[1]); from tests.support.netns import NetnsLab; "
            "ns = NetnsLab().namespace('orphan'); print(ns.name, flush=True); time.sleep(60)")
    child = subprocess.Popen([sys.executable, "-c", code, str(ROOT)],
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    name = child.stdout.readline().strip()
    os.kill(child.pid, signal.SIGKILL)  # no chance to clean up
    child.wait(timeout=10)
    child.stdout.close()
    assert name in _netns_names()
    assert name in cleanup_stale()
    assert name not in _netns_names()
