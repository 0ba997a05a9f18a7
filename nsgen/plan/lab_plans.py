"""A lab's scripts as typed plans: ordered steps, each a comment and the commands it runs.

Every style, the demo, the rendered README and `--dry-run` print these plans; no template writes
a command. The commands come from `nsgen.plan.commands`.
"""

from collections.abc import Sequence

from nsgen.plan import reachability
from nsgen.plan.commands import (
    CHECK_SECONDS,
    Command,
    Connect,
    Made,
    Ping,
    Plan,
    Probe,
    addr_command,
    bridge_add,
    conditioning,
    device_del,
    flood_entry,
    link_add,
    link_up,
    loopback_up,
    netns_add,
    netns_del,
    outside,
    route_command,
    set_sysctl,
    start_service,
    step,
    stop_processes,
    stop_service,
    tuning,
)
from nsgen.topology import ends
from nsgen.topology.ends import MacvlanParent, Tunnel, VxlanPort, owned
from nsgen.topology.model import Lab, RunExpectation, TcpExpectation


def ipv4_only(lab: Lab) -> bool:
    """No IPv6 address anywhere: the lab turns off IPv6 link-local addresses (addrgenmode none)."""
    interfaces = [*(i for ns in lab.namespaces for i in ns.interfaces), *lab.root_interfaces]
    owners = [*interfaces, *lab.bridges]
    return not any(a.version == 6 for owner in owners for a in owner.addresses)


def setup(lab: Lab) -> Plan:
    """The steps that build `lab`, in the guide's order: namespaces, bridges, veths, sysctls,
    addresses, MTUs and MACs, link-local off, up, routes. Root-namespace commands never depend on a
    namespace's, so a runner may run the root's first and each namespace's on its own."""
    v4 = ipv4_only(lab)
    # each link's end in the root namespace (creation_order puts it first)
    root_veths = [end.device for link in lab.links if (end := link.creation_order[0]).netns is None and owned(end)]
    bridges = [command for br in lab.bridges for command in bridge_add(br, v4)]
    veths = [link_add(link) for link in lab.links]
    macvlans = sum(isinstance(link.b, MacvlanParent) for link in lab.links)
    namespaced = [(ns.netns, iface) for ns in lab.namespaces for iface in ns.interfaces]
    every = [*((ns, iface.name, iface) for ns, iface in namespaced), *((None, i.device, i) for i in lab.root_interfaces)]
    tuned = [command for ns, dev, i in every for command in tuning(dev, i, ns)]
    local_off = [Command(("link", "set", "dev", i.name, "addrgenmode", "none"), ns) for ns, i in namespaced]
    local_off += [Command(("link", "set", "dev", dev, "addrgenmode", "none")) for dev in root_veths]
    ups = [loopback_up(ns.netns) for ns in lab.namespaces]
    ups += [link_up(i.name, ns) for ns, i in namespaced]
    ups += [link_up(dev, None) for dev in root_veths]
    tunnels, fdb = tunnels_made(lab.tunnels, v4)
    routes = [route_command("add", route, ns.netns) for ns in lab.namespaces for route in ns.routes]
    return (
        *step("create new namespaces", [netns_add(ns.netns) for ns in lab.namespaces]),
        *step("create the bridges in the root namespace; the namespaces' veths plug into them", bridges),
        *step(_links_comment(len(lab.links) - macvlans, macvlans, bool(lab.bridges)), veths),
        *step(
            "create the VXLAN devices (multi-host lab): each made in this machine's root namespace, where its\n"
            "socket stays on the underlay; a cross-host link's end directly inside its namespace, under the\n"
            "interface's name; a spanning bridge's port plugged into this machine's part of the bridge",
            tunnels,
        ),
        *step(
            "the spanning bridges' head-end replication: an all-zero FDB entry per other machine, so\n"
            "broadcasts and unknown destinations reach every machine's part of the bridge",
            fdb,
        ),
        *step(
            "set the namespaces' sysctls (forwarding turns a namespace into a router)",
            [set_sysctl(key, value, ns.netns) for ns in lab.namespaces for key, value in ns.sysctls],
        ),
        *step(
            "give those devices an ip addr",
            [addr_command("add", a, dev, ns) for ns, dev, i in every for a in i.addresses],
        ),
        *step("set MTUs and MAC addresses", tuned),
        *step(
            "an IPv4-only lab: no IPv6 link-local addresses (addrgenmode none), sparing the kernel\n"
            "generating them and flooding multicast to every bridge port",
            local_off if v4 and (lab.links or lab.tunnels) else [],
        ),
        *step(
            "set the interfaces up, and each namespace's loopback (as every container runtime does:\n"
            "without it, 127.0.0.1 answers nothing)",
            ups,
        ),
        *step(
            "the links' conditions: a qdisc on each end whose sent traffic they shape (tc; tbf for a rate\n"
            "alone, netem for delay, jitter or loss)",
            [conditioning("add", end, conditions) for _, end, conditions in lab.conditioned],
        ),
        *step("route the traffic: without routes a namespace reaches only its own subnets", routes),
        *step(
            "the lab and the outside: the root namespace forwards (teardown puts it back as it was),\n"
            "the NAT subnets' traffic leaving the machine is masqueraded, and the forwarded ports of\n"
            "the machine reach the lab (iptables rules with the lab's comment: teardown deletes those)",
            outside(lab),
        ),
        *step(
            "start the services, each inside its namespace once the lab's network is up (in the\n"
            "background, in a session of its own, its output in /run/nsgen/LAB/NETNS/NAME.log;\n"
            "start_service NETNS NAME COMMAND [READY SECONDS] waits up to SECONDS for READY)",
            [start_service(ns.netns, service) for ns in lab.namespaces for service in ns.services],
        ),
    )


def _links_comment(veths: int, macvlans: int, bridges: bool) -> str:
    """What the links' step says: the veth pairs as the guide makes them, the macvlans."""
    said = []
    if veths:
        said.append(
            f"create {veths} veth pair{'s' if veths > 1 else ''}, each end directly where it lives. The guide makes a pair in\n"
            "the root namespace (`ip link add veth-0 type veth peer veth-1`), then moves each end\n"
            "(`ip link set veth-0 netns ns-0`): made in place, a name inside a namespace never clashes\n"
            "with the root's, and no half-moved pair is left behind."
            + ("\nA bridge port is plugged in as it is made." if bridges else "")
        )
    if macvlans:
        said.append(
            f"create {macvlans} macvlan(s), each directly in its namespace, on a parent device the lab does\n"
            "not own and never changes (mode bridge: the macvlans of one parent reach each other)"
        )
    return "\n".join(said)


def tunnels_made(tunnels: Sequence[Tunnel], v4: bool) -> tuple[list[Command], list[Command]]:
    """The VXLAN devices `tunnels` (of one machine's part of a multi-host lab) made, and the FDB entries
    of its spanning bridges' ports."""
    made, fdb = [], []
    for tunnel in tunnels:  # each made in the root namespace (its socket stays there), where the table says
        makes = tuple(Made(tunnel.netns, *fact) for fact in ends.kind(tunnel).facts(tunnel))
        made.append(Command(ends.device_words(tunnel), makes=makes))
        if isinstance(tunnel, VxlanPort):  # a bridge's port: up, and flooding to the other machines
            made += [Command(("link", "set", "dev", tunnel.device, "addrgenmode", "none"))] if v4 else []
            made.append(link_up(tunnel.device, None))
            fdb += [flood_entry("append", tunnel.device, remote) for remote in tunnel.remotes]
    return made, fdb


def teardown(lab: Lab) -> Plan:
    """The steps that remove `lab`: its namespaces (their devices go with them, and so does every
    root-namespace veth end: each has its peer in a namespace), then its bridges. What still runs in
    a namespace is stopped first: a process there keeps it, and its devices, alive after `ip netns del`."""
    return (
        *step(
            "stop the lab's services, each by its process group (TERM, a grace, KILL), and forget their files",
            [stop_service(ns.netns, service) for ns in lab.namespaces for service in ns.services],
        ),
        *step(
            "stop every process still running in a lab namespace (a server started by hand, an `nsgen exec`)",
            stop_processes([ns.netns for ns in lab.namespaces]),
        ),
        *step(
            "delete the namespaces: their devices go with them, and so do the veth peers of those",
            [netns_del(ns.netns) for ns in lab.namespaces],
        ),
        *step(
            "delete the bridges",
            [device_del(bridge.device) for bridge in lab.bridges],
        ),
        *step(
            "delete the spanning bridges' VXLAN ports (a bridge lets go of its ports, it does not delete them)",
            [device_del(t.device) for t in lab.tunnels if isinstance(t, VxlanPort)],
        ),
    )


def verify(lab: Lab, checks: list[reachability.Check] | None = None) -> Plan:
    """One ping per check of the topology's intent and its `expect:` list (`checks`, if computed already)."""
    held_in = {a.ip: ns.netns for ns in lab.namespaces for iface in ns.interfaces for a in iface.addresses}
    pings = [
        Ping(c.source.name, c.source.netns, c.address, c.target, c.reachable, held_in.get(c.address, ""))
        for c in (reachability.checks(lab) if checks is None else checks)
    ]
    sampled = reachability.sampled(lab)
    comment = "ping every address each namespace should reach" + (
        f" (large segments sampled: each member pings\nthe next {reachability.SAMPLED_PEERS} members "
        "and the segment's root-namespace addresses)"
        if sampled
        else ""
    )
    return tuple(step(comment, pings))


def checks(lab: Lab) -> Plan:
    """The topology's own checks beyond pings (`expect:`), from this machine's namespaces: TCP
    connections, then commands whose output must match."""
    netns = {ns.name: ns.netns for ns in lab.namespaces}
    here = [e for e in lab.expect if e.source in netns]
    connects = [Connect(e.source, netns[e.source], e.address, e.port, e.open) for e in here if isinstance(e, TcpExpectation)]
    probes = [Probe(e.source, netns[e.source], e.command, e.output) for e in here if isinstance(e, RunExpectation)]
    tcp, run = CHECK_SECONDS["tcp"], CHECK_SECONDS["run"]
    return (
        *step(f"connect where the topology expects a TCP port open, or closed (bash's /dev/tcp, {tcp} s at most)", connects),
        *step(f"run the topology's commands: each one's output must match its pattern ({run} s at most)", probes),
    )
