"""The commands a lab's scripts run, each built by a small function returning its argv.

A command is an argv and where it runs (the root namespace, or inside a named namespace): `ip`
commands name every operand with its keyword (`link add name A`, `dev X`, `peer name B`), so no
name that validation accepts can be read by iproute2 as a keyword or an abbreviation of one.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from nsgen.topology import ends
from nsgen.topology.conditions import Conditions, rate_bits
from nsgen.topology.facts import CONDITIONED, Fact
from nsgen.topology.model import (
    Bridge,
    Endpoint,
    Interface,
    IPAddress,
    IPInterface,
    IPv4Network,
    Lab,
    Link,
    Route,
    Service,
    once,
)

Tool = Literal["ip", "sysctl", "bridge", "stop", "tc", "service", "iptables", "accept", "forward_rule"]


class Made(NamedTuple):
    """A declared fact a command makes on its own (`nsgen.topology.facts`), by what identifies it:
    where (None: the root namespace), its kind, its device, and the value the command names (an
    address without its prefix length, an MTU, a MAC, a route's text, an iptables rule's words)."""

    netns: str | None
    kind: str
    device: str = ""
    value: str = ""

    @classmethod
    def of(cls, fact: Fact) -> "Made":
        """`fact` as a command names it (an address without its prefix length)."""
        return cls(fact.netns, fact.kind, fact.device, fact.value.partition("/")[0] if fact.kind == "address" else fact.value)


@dataclass(frozen=True)
class Command:
    """`tool ARGV` run in the root namespace (`netns` None) or inside the namespace `netns`.

    `ip` takes iproute2's words; `sysctl` (KEY VALUE) sets a sysctl; `bridge` takes iproute2's
    `bridge` words (a multi-host lab's FDB entries); `stop` (NETNS...) stops every process in those namespaces;
    `tc` takes tc's words (a link's conditions); `service` (start NAME COMMAND [READY SECONDS], or
    stop NAME) starts or stops a service inside `netns`; `iptables` takes iptables' words (a rule of
    the lab's NAT); `accept` the match of a FORWARD rule that accepts the lab's traffic (--allow-forward).
    `makes`: the declared facts the command makes on its own (what `nsgen check` files under its step);
    `removes`: those it deletes (with a namespace or device, the namespace or device alone).
    """

    argv: tuple[str, ...]
    netns: str | None = None
    tool: Tool = "ip"
    makes: tuple[Made, ...] = field(default=(), compare=False)
    removes: tuple[Made, ...] = field(default=(), compare=False)

    def __init__(
        self, argv: tuple[str, ...], netns: str | None = None, tool: Tool = "ip", makes: tuple[Made, ...] = (),
        removes: tuple[Made, ...] = (),
    ) -> None:  # fmt: skip
        # the frozen dataclass's own __init__, without its object.__setattr__ per field: a large lab's
        # plans make hundreds of thousands of commands
        fields = self.__dict__
        fields["argv"], fields["netns"], fields["tool"], fields["makes"], fields["removes"] = argv, netns, tool, makes, removes


#: The MTU the kernel gives a new veth or bridge.
MTU_DEFAULT = 1500

#: How long a ping asks for an answer, in seconds (`-w`: a request every half second until one is
#: answered): an answer expected, or none. One request alone was lost now and then where the floods
#: of a large bridge overran the kernel's backlog (1 ping in 8000: a FAIL of a lab that works), and
#: a silence expected passed on one lost request; a silence expected is the firewall check's, asked
#: four times.
PING_WAIT = {True: "3", False: "2"}

#: How long verify.sh and demo.sh give a check of each kind, in seconds: a TCP connection, a command.
CHECK_SECONDS = {"tcp": 2, "run": 10}


@dataclass(frozen=True)
class Ping:
    """One reachability check: one ping from inside `netns` (of the node `node`) to `address`, held
    by `holder` (`ns-1:veth-1`, `bridge v-net-0`), which must answer (`reachable`) or stay silent.
    `held_in`: the lab namespace that has the address ('' for any other place), where the ping makes
    a neighbour entry too."""

    node: str
    netns: str
    address: IPAddress
    holder: str
    reachable: bool = True
    held_in: str = ""

    def __init__(
        self, node: str, netns: str, address: IPAddress, holder: str, reachable: bool = True, held_in: str = ""
    ) -> None:  # fmt: skip
        fields = self.__dict__  # as Command's: a large lab checks tens of thousands of addresses
        fields["node"], fields["netns"], fields["address"], fields["holder"] = node, netns, address, holder
        fields["reachable"], fields["held_in"] = reachable, held_in

    @once  # verify.sh and demo.sh each write it
    def ping(self) -> tuple[str, ...]:
        """The ping alone: verify.sh runs it inside the namespace (through nsenter)."""
        return ("ping", f"-{self.address.version}", "-c", "1", "-i", "0.5", "-w", PING_WAIT[self.reachable], str(self.address))

    @property
    def argv(self) -> tuple[str, ...]:
        """The ping as the guide types it (demo.sh): `ip netns exec NETNS ping …`."""
        return ("ip", "netns", "exec", self.netns, *self.ping)


@dataclass(frozen=True)
class Connect:
    """One TCP check: from inside `netns` (of the node `node`), a connection to `address`:`port`
    (bash's /dev/tcp), which must open, or must not (`open`)."""

    node: str
    netns: str
    address: IPAddress
    port: int
    open: bool = True

    @property
    def target(self) -> str:
        return f"[{self.address}]:{self.port}" if self.address.version == 6 else f"{self.address}:{self.port}"

    @property
    def argv(self) -> tuple[str, ...]:
        # the path bash connects through: an address and a port, nothing the shell reads otherwise
        return ("ip", "netns", "exec", self.netns, "bash", "-c", f"exec 3<>/dev/tcp/{self.address}/{self.port}")


@dataclass(frozen=True)
class Probe:
    """One command check: `command` run inside `netns` (of the node `node`, under `bash -c`); its
    output must match `output`, an extended regular expression (bash's `=~`)."""

    node: str
    netns: str
    command: str
    output: str

    @property
    def argv(self) -> tuple[str, ...]:
        return ("ip", "netns", "exec", self.netns, "bash", "-c", self.command)


@dataclass(frozen=True)
class Step:
    """What a reader sees as one step of the guide: a comment (one or more lines) and its commands."""

    comment: str
    commands: tuple[Command | Ping | Connect | Probe, ...]


Plan = tuple[Step, ...]


def alias_words(netns: str) -> tuple[str, ...]:
    """What a namespace's alias (the guide's ip0) runs, its own arguments after: `ip` inside `netns`."""
    return ("ip", "netns", "exec", netns, "ip")


def display(lab: Lab, what: Literal["link", "addr", "route"]) -> Plan:
    """The guide's displayLinks (displayAddr, displayRoutes): `ip WHAT` in every namespace, a step
    each, then (not for routes: the root namespace's are not the lab's) each of the lab's devices
    in the root namespace."""
    steps = [Step(f"netns {ns.netns}", (Command((what,), ns.netns),)) for ns in lab.namespaces]
    if lab.root_devices and what != "route":
        shown = tuple(Command((what, "show", "dev", device)) for device in lab.root_devices)
        steps.append(Step("root namespace: the lab devices", shown))
    return tuple(steps)


def stop_processes(netns: list[str]) -> list[Command]:
    """Stop every process still in the namespaces `netns` (TERM, a grace, KILL): it would keep them
    alive. One command for all (the runtime looks through /proc once); none when there is none."""
    return [Command(tuple(netns), None, "stop")] if netns else []


def start_service(netns: str, service: Service) -> Command:
    """Start `service` inside `netns`: its command verbatim, then what setup waits for and how long."""
    ready = (service.ready, str(service.timeout)) if service.ready else ()
    return Command(("start", service.name, service.command, *ready), netns, "service", (Made(netns, "service", service.name),))


def stop_service(netns: str, service: Service) -> Command:
    """Stop `service` (its process group: TERM, a grace, KILL) and forget its files."""
    return Command(("stop", service.name), netns, "service")


def qdisc_words(conditions: Conditions) -> tuple[str, ...]:
    """The qdisc that applies `conditions`: tbf for a rate alone (its bucket holds 10 ms of the rate,
    16 KB at least, so that a few full frames pass at once), else netem (delay, jitter, loss, rate)."""
    if conditions.qdisc == "tbf":
        burst = max(16, math.ceil(rate_bits(conditions.rate or "0bit") / 8 / 1000 / 100))
        return ("tbf", "rate", conditions.rate or "", "burst", f"{burst}kb", "latency", "50ms")
    words = ["netem"]
    words += ["delay", conditions.delay, *([conditions.jitter] if conditions.jitter else [])] if conditions.delay else []
    words += ["loss", conditions.loss] if conditions.loss else []
    return (*words, *(["rate", conditions.rate] if conditions.rate else []))


def canonical_rate(bits: float) -> str:
    """A rate as the declared state writes it: in the largest unit that divides it (10mbit, 2500kbit)."""
    whole = round(bits)
    for unit, size in (("gbit", 10**9), ("mbit", 10**6), ("kbit", 10**3)):
        if whole and whole % size == 0:
            return f"{whole // size}{unit}"
    return f"{whole}bit"


def conditioning(verb: Literal["add", "replace", "del"], end: Endpoint, conditions: Conditions | None) -> Command:
    """`tc qdisc add|replace|del dev X root [QDISC]`: the conditions on what `end` sends (its egress)."""
    words = qdisc_words(conditions) if conditions and verb != "del" else ()
    conditioned = tuple(Made(end.netns, kind, end.device) for kind in CONDITIONED)
    made, removed = ((), conditioned) if verb == "del" else (conditioned, ())
    return Command(("qdisc", verb, "dev", end.device, "root", *words), end.netns, "tc", made, removed)


def shaping(link: Link) -> list[Command]:
    """The qdisc of each end whose sent traffic the link conditions."""
    return [conditioning("add", end, c) for end, c in zip((link.a, link.b), link.sends, strict=True) if c]


def loopback_up(netns: str) -> Command:
    """A new namespace's `lo` is down: up, as every container runtime brings it (CNI's loopback plugin)."""
    return link_up("lo", netns)


def link_up(device: str, netns: str | None) -> Command:
    """`link set dev DEVICE up`."""
    return Command(("link", "set", "dev", device, "up"), netns, makes=(Made(netns, "up", device),))


def netns_add(netns: str) -> Command:
    """`netns add NETNS`."""
    return Command(("netns", "add", netns), makes=(Made(netns, "namespace"),))


def netns_del(netns: str) -> Command:
    """`netns del NETNS`: the devices in it go with it."""
    return Command(("netns", "del", netns), removes=(Made(netns, "namespace"),))


def device_del(device: str, netns: str | None = None) -> Command:
    """`link del dev DEVICE` (a veth pair goes with either end)."""
    return Command(("link", "del", "dev", device), netns, removes=(Made(netns, "device", device),))


def flood_entry(verb: str, device: str, remote: IPAddress) -> Command:
    """`bridge fdb append|del 00:00:00:00:00:00 dev DEVICE dst REMOTE`: a spanning bridge's VXLAN port
    floods broadcasts and unknown destinations to REMOTE (head-end replication), or stops."""
    flood = (Made(None, "floods", device, str(remote)),)
    made, removed = (flood, ()) if verb == "append" else ((), flood)
    argv = ("fdb", verb, "00:00:00:00:00:00", "dev", device, "dst", str(remote))
    return Command(argv, tool="bridge", makes=made, removes=removed)


def rule_del(rule: Command) -> Command:
    """An iptables rule of the lab's (`-A`) deleted (`-D`), by the same words."""
    return Command(tuple("-D" if word == "-A" else word for word in rule.argv), rule.netns, "iptables", removes=rule.makes)


def set_sysctl(key: str, value: str, netns: str | None) -> Command:
    """KEY=VALUE in `netns` (the root namespace: None)."""
    return Command((key, value), netns, "sysctl", (Made(netns, "sysctl", key, value),))


def address_words(address: IPInterface) -> tuple[str, ...]:
    """An address as the guide writes it (bare for a single host), IPv6 with `nodad`: the lab's are unique."""
    text = str(address)  # ADDRESS/PREFIX; the bare address for a single host
    text = text.partition("/")[0] if address.network.prefixlen == address.max_prefixlen else text
    return (text, "nodad") if address.version == 6 else (text,)


def tuning(device: str, iface: Interface, netns: str | None) -> list[Command]:
    """`link set dev DEVICE mtu M address A`: the MTU and MAC `iface` declares; none if neither."""
    makes = (*((Made(netns, "mtu", device, str(iface.mtu)),) if iface.mtu else ()),
             *((Made(netns, "mac", device, iface.mac.lower()),) if iface.mac else ()))  # fmt: skip
    words = (*(("mtu", str(iface.mtu)) if iface.mtu else ()), *(("address", iface.mac) if iface.mac else ()))
    return [Command(("link", "set", "dev", device, *words), netns, makes=makes)] if makes else []


def bridge_add(br: Bridge, v4: bool) -> list[Command]:
    """Make a bridge in the root namespace: its addresses, MTU, no link-local in an IPv4-only lab, up."""
    made = (Made(None, "device", br.device),)
    commands = [Command(("link", "add", "name", br.device, "address", br.mac, "type", "bridge"), makes=made)]
    commands += [addr_command("add", address, br.device, None) for address in br.addresses]
    if br.mtu:
        mtu = str(br.mtu)
        commands.append(Command(("link", "set", "dev", br.device, "mtu", mtu), makes=(Made(None, "mtu", br.device, mtu),)))
    commands += [Command(("link", "set", "dev", br.device, "addrgenmode", "none"))] if v4 else []
    return [*commands, link_up(br.device, None)]


def link_add(link: Link) -> Command:
    """Make a link in one command, by its ends' kinds (`nsgen.topology.ends`): a veth pair, each end
    directly where it lives, a bridge port plugged in as it is made; or a macvlan of its parent."""
    made = tuple(Made(end.netns, *fact) for end in link.creation_order for fact in ends.kind(end).facts(end))
    return Command(ends.link_words(*link.creation_order), makes=made)


def route_command(verb: Literal["add", "del"], route: Route, netns: str) -> Command:
    """`route add|del DESTINATION [via GATEWAY] [dev DEVICE]` inside `netns`."""
    words = ["route", verb, route.destination]
    words += ["via", str(route.via)] if route.via else []
    words += ["dev", route.dev] if route.dev else []
    fact = (Made(netns, "route", "", route.text),)
    made, removed = (fact, ()) if verb == "add" else ((), fact)
    return Command(tuple(words), netns, makes=made, removes=removed)


def addr_command(verb: Literal["add", "del"], address: IPInterface, device: str, netns: str | None) -> Command:
    """`addr add|del ADDRESS dev DEVICE` (in the root namespace when `netns` is None). A deletion names
    the prefix length always: without it, ip deletes the first address of that IP (the declared /16
    where an extra /32 of the same IP is to go)."""
    words = address_words(address) if verb == "add" else (address.with_prefixlen,)
    fact = (Made(netns, "address", device, str(address.ip)),)
    made, removed = (fact, ()) if verb == "add" else ((), fact)
    return Command(("addr", verb, *words, "dev", device), netns, makes=made, removes=removed)


def step(comment: str, commands: Sequence[Command | Ping]) -> list[Step]:
    """One step of a plan, or none when it has no command."""
    return [Step(comment, tuple(commands))] if commands else []


#: The root namespace's sysctl a lab with NAT or forwarded ports needs: teardown puts it back.
IP_FORWARD = "net.ipv4.ip_forward"


def lab_networks(lab: Lab) -> list[IPv4Network]:
    """The lab's own IPv4 subnets: traffic between them is the lab's, never masqueraded."""
    owners = [*(i for ns in lab.namespaces for i in ns.interfaces), *lab.root_interfaces, *lab.bridges]
    networks = {a.network for owner in owners for a in owner.addresses if a.version == 4}
    return sorted(n for n in networks if isinstance(n, IPv4Network) and n.prefixlen < 32)


def _rule(lab: Lab, table: str, chain: str, match: tuple[str, ...], target: tuple[str, ...]) -> Command:
    """`-t TABLE -A CHAIN MATCH -m comment --comment nsgen:LAB -j TARGET`: teardown deletes it by its comment."""
    comment = ("-m", "comment", "--comment", f"nsgen:{lab.key}")
    words = ("-t", table, "-A", chain, *match, *comment, "-j", *target)
    return Command(words, tool="iptables", makes=(Made(None, "iptables", "", " ".join(words)),))


def _masquerading(lab: Lab) -> list[Command]:
    """Each `nat:` subnet's traffic leaving the machine masqueraded, but what goes to the lab's own subnets."""
    rules = []
    for source in lab.nat:
        rules += [_rule(lab, "nat", "POSTROUTING", ("-s", str(source), "-d", str(net)), ("RETURN",)) for net in lab_networks(lab)]
        rules.append(_rule(lab, "nat", "POSTROUTING", ("-s", str(source)), ("MASQUERADE",)))
    return rules


def _port_forwarding(lab: Lab) -> list[Command]:
    """Each forwarded port: a connection to any of the machine's addresses on it, from outside
    (PREROUTING) or from the machine itself (OUTPUT), goes to its namespace's address and port."""
    rules = []
    for forward in lab.forwards:
        # any of the machine's addresses but loopback's: its own 127.0.0.1:PORT (a local resolver's) stays its own
        # in the order `iptables -S` prints them (the declared state compares its words)
        local = ("-m", "addrtype", "--dst-type", "LOCAL")
        match = ("!", "-d", "127.0.0.0/8", "-p", forward.proto, "--dport", str(forward.port), *local)
        target = ("DNAT", "--to-destination", f"{forward.address}:{forward.to_port}")
        rules += [_rule(lab, "nat", chain, match, target) for chain in ("PREROUTING", "OUTPUT")]
    return rules


def outside(lab: Lab) -> list[Command]:
    """The lab and the outside: forwarding on in the root namespace, then its NAT and forwarded-port
    rules, in order; nothing for a lab with neither."""
    rules = [*_masquerading(lab), *_port_forwarding(lab)]
    return [set_sysctl(IP_FORWARD, "1", None), *rules] if rules else []


def accepts(lab: Lab) -> list[Command]:
    """The FORWARD rules --allow-forward adds where FORWARD drops: frames between a bridge's ports,
    the NAT subnets' traffic out and its answers, and the forwarded ports' connections both ways."""
    words = [("-i", br.device, "-o", br.device) for br in lab.bridges]
    for source in lab.nat:
        words += [("-s", str(source)), ("-d", str(source), "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED")]
    for f in lab.forwards:  # in `iptables -S`'s words (an address with its /32), as the declared state reads them
        words += [("-d", f"{f.address}/32", "-p", f.proto, "--dport", str(f.to_port))]
        words += [("-s", f"{f.address}/32", "-p", f.proto, "--sport", str(f.to_port))]
    return [Command(w, tool="accept") for w in words]
