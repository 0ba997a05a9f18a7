"""Validation of a multi-host lab's placement: `hosts:`, each namespace's `host:`, bridges' `hosts:`, VNIs.

One phase of `lab.PHASES` (it runs after the namespaces and veth links are built): it checks
every rule of placing a topology on machines and completes the model: each namespace's host, each
bridge's hosts (declared, or those of the namespaces plugged into it), a VNI for every link whose
ends sit on different machines and every bridge that spans machines. A topology without `hosts:` is
a one-machine lab: the phase only refuses multi-host keys there.
"""

import dataclasses
import ipaddress
import itertools
from typing import Any

from nsgen.problems import field_path
from nsgen.topology.ends import MACVLAN, ROOT
from nsgen.topology.model import IPInterface, IPNetwork, Machine, Vxlan
from nsgen.topology.schema import IFNAME_MAX
from nsgen.validate.context import Context
from nsgen.validate.hints import known

#: The root-namespace device of a spanning bridge's VXLAN port on each machine: PREFIX + vx + VNI.
PORT_DEVICE = "{prefix}vx{vni}"
VNI_MAX = 2**24 - 1


def port_device(prefix: str, vni: int) -> str:
    return PORT_DEVICE.format(prefix=prefix, vni=vni)


def check(b: Context) -> None:
    """The placement phase."""
    doc = b.doc
    hosts = doc.get("hosts") or {}
    if not hosts:
        for name, spec in b.namespaces.items():
            if "host" in spec:
                b.problem(["namespaces", name, "host"], "no hosts: are declared (a one-machine lab places nothing)")
        for name, spec in b.bridges.items():
            if "hosts" in spec:
                b.problem(["bridges", name, "hosts"], "no hosts: are declared (a one-machine lab places nothing)")
        if "vxlan" in doc:
            b.problem(["vxlan"], "no hosts: are declared: a one-machine lab has no VXLAN")
        return
    _Placement(b, hosts).run()


class _Placement:
    def __init__(self, b: Context, hosts: dict[str, Any]):
        self.b = b
        self.hosts = hosts
        self.machines: dict[str, Machine] = {}
        self.underlays: dict[str, IPNetwork] = {}
        self.placed: dict[str, tuple[str, list[Any]]] = {}  # namespace -> (host, path that placed it)
        self.bridge_hosts: dict[str, tuple[str, ...]] = {}

    def run(self) -> None:
        self._machines()
        self._namespaces()
        self._root_ends()
        self._bridges()
        self._empty_hosts()
        self._overlaps()
        self._outside()
        vxlan_spec = self.b.doc.get("vxlan") or {}
        vxlan = Vxlan(vxlan_spec.get("vni_base", Vxlan.vni_base), vxlan_spec.get("port", Vxlan.port))
        self._vnis(vxlan)
        self.b.machines = tuple(self.machines.values())
        self.b.vxlan = vxlan
        self.b.lab_namespaces = tuple(
            dataclasses.replace(ns, host=self.placed[ns.name][0]) if ns.name in self.placed else ns
            for ns in self.b.lab_namespaces
        )

    def _machines(self) -> None:
        owners: dict[Any, str] = {}
        for name, spec in self.hosts.items():
            path = ["hosts", name, "address"]
            try:
                address = ipaddress.ip_interface(spec["address"])
            except ValueError:
                self.b.problem(path, f"invalid address '{spec['address']}' (expected e.g. 198.51.100.1 or 198.51.100.1/24)")
                continue
            if address.ip in owners:
                self.b.problem(path, f"underlay address {address.ip} is also host {owners[address.ip]}'s")
                continue
            owners[address.ip] = name
            ansible = tuple((key, value) for key, value in (spec.get("ansible") or {}).items())
            self.machines[name] = Machine(name, address.ip, spec.get("mtu", 1500), ansible)
            self.underlays[name] = address.network

    def _unknown(self, path: list[Any], name: str) -> None:
        self.b.problem(path, f"unknown host '{name}'{known(name, self.hosts)}")

    def _namespaces(self) -> None:
        """Each namespace on exactly one host: by a host's `namespaces:` list or by its own `host:`."""
        for host, spec in self.hosts.items():
            for index, ns in enumerate(spec.get("namespaces") or []):
                self._place(ns, host, ["hosts", host, "namespaces", index])
        for name, spec in self.b.namespaces.items():
            if "host" in spec:
                self._place(name, spec["host"], ["namespaces", name, "host"])
        for name in self.b.namespaces:
            if name not in self.placed:
                self.b.problem(["namespaces", name], "placed on no host (give it host: NAME; hosts: are declared)")

    def _place(self, ns: str, host: str, path: list[Any]) -> None:
        if ns not in self.b.namespaces:
            self.b.problem(path, f"unknown namespace '{ns}'{known(ns, self.b.namespaces)}")
        elif host not in self.hosts:
            self._unknown(path, host)
            self.placed.setdefault(ns, (host, path))
        elif ns in self.placed:
            first, where = self.placed[ns]
            self.b.problem(path, f"namespace '{ns}' is placed twice: on {first} ({field_path(where)}) and on {host}")
        else:
            self.placed[ns] = (host, path)

    def _root_ends(self) -> None:
        if self.b.doc.get("host"):
            self.b.problem(["host"], "a multi-host lab has no single root namespace: use a namespace instead of host:")
        for path, ends, _ in self.b.links:
            if any(end.node == ROOT for end in ends):
                self.b.problem(path, "a multi-host lab has no single root namespace: a link end cannot be host:IF")
            elif any(end.node == MACVLAN for end in ends):
                self.b.problem(path, "a multi-host lab has no single root namespace: a macvlan's parent is one machine's")

    def _host_of(self, ns: str) -> str | None:
        host = self.placed.get(ns, (None, None))[0]
        return host if host in self.machines else None

    def _bridges(self) -> None:
        """A bridge's hosts: declared, else the hosts of the namespaces plugged into it; each port's
        namespace must sit on one of them."""
        ports: dict[str, list[tuple[list[Any], str]]] = {name: [] for name in self.b.bridges}
        for path, ends, _ in self.b.links:
            bridged = [end for end in ends if self.b.is_bridge(end.node)]
            far = [end for end in ends if end.node in self.b.namespaces]
            if bridged and far:
                ports[bridged[0].node].append((path, far[0].node))
        for name, spec in self.b.bridges.items():
            declared = spec.get("hosts")
            if declared is not None:
                hosts = []
                for index, host in enumerate(declared):
                    if host not in self.hosts:
                        self._unknown(["bridges", name, "hosts", index], host)
                    elif host not in hosts:
                        hosts.append(host)
                for path, ns in ports[name]:
                    host = self._host_of(ns)
                    if host is not None and host not in hosts and all(h in self.hosts for h in declared):
                        where = f"where bridge '{name}' has no part (its hosts: {', '.join(hosts)})"
                        self.b.problem(path, f"namespace '{ns}' is on {host}, {where}")
            else:
                hosts = list(dict.fromkeys(h for _, ns in ports[name] if (h := self._host_of(ns)) is not None))
                if not hosts and not ports[name]:
                    self.b.problem(["bridges", name], "on no host: give it hosts: [NAME, ...] or plug a namespace into it")
            self.bridge_hosts[name] = tuple(hosts)
        self.b.bridge_hosts = self.bridge_hosts

    def _empty_hosts(self) -> None:
        used = {host for host, _ in self.placed.values()} | {h for hosts in self.bridge_hosts.values() for h in hosts}
        for name in self.hosts:
            if name not in used:
                self.b.problem(["hosts", name], f"host {name} has nothing on it: no namespace and no bridge")

    def _overlaps(self) -> None:
        """No lab subnet (declared or of an address) overlaps a host's underlay subnet."""
        lab_networks: dict[IPNetwork, str] = {}
        for path, nets in self.b.subnets.items():
            for net in nets:
                lab_networks.setdefault(net, field_path(list(path)))
        for port in [*self.b.ports.values(), *self.b.bridge_ports.values()]:
            for address in port.addresses:
                lab_networks.setdefault(address.network, f"{port.node}:{port.name}")
        for host, underlay in self.underlays.items():
            for net, owner in lab_networks.items():
                if net.version == underlay.version and net.overlaps(underlay):  # type: ignore[arg-type]
                    self.b.problem(
                        ["hosts", host, "address"],
                        f"the underlay {underlay} of host {host} overlaps the lab subnet {net} ({owner})",
                    )

    def _gateways(self) -> list[tuple[str, IPInterface]]:
        """Where the lab's traffic meets a host's root namespace: each bridge address, with the host that
        holds it (a spanning bridge's addresses are on its first host's part)."""
        return [
            (self.bridge_hosts[name][0], address)
            for name, port in self.b.bridge_ports.items()
            if self.bridge_hosts.get(name)
            for address in port.addresses
        ]

    def _outside(self) -> None:
        """NAT and forwarded ports on the host whose root namespace the lab's traffic meets (a bridge's
        address there): a NAT subnet must have such an address on it, a forward's namespace one on a
        subnet its host's root namespace is on (its address becomes that one)."""
        gateways = self._gateways()
        for index, network in enumerate(self.b.nat):
            if not any(address.network.overlaps(network) for _, address in gateways):
                said = f"no host's root namespace has an address on {network} (a bridge's): its traffic leaves by no host"
                self.b.problem(["nat", index, "from"], said)
        forwards = []
        for index, forward in enumerate(self.b.forwards):
            host = self._host_of(forward.node)
            ns = next(ns for ns in self.b.lab_namespaces if ns.name == forward.node)
            roots = [gateway.network for where, gateway in gateways if where == host]
            there = [a.ip for iface in ns.interfaces for a in iface.addresses if any(a.ip in net for net in roots)]
            if host is not None and not there:
                said = f"namespace '{forward.node}' has no address on a subnet of {host}'s root namespace (a bridge's there)"
                self.b.problem(["forward", index, "to"], said + ": the forwarded port could not reach it")
            forwards.append(dataclasses.replace(forward, address=there[0]) if there else forward)
        self.b.forwards = tuple(forwards)

    def _vnis(self, vxlan: Vxlan) -> None:
        """A VNI for every cross-host link and spanning bridge: declared, else the next from vni_base
        (links first, in order, then bridges; a declared one skipped): a link added with its own VNI
        leaves the others theirs; no two alike; MTUs that fit the overlay."""
        crossing: list[tuple[list[Any], str, int | None, tuple[str, ...]]] = []  # path, what, vni, hosts
        link_index: dict[int, int] = {}
        for index, (path, ends, spec) in enumerate(self.b.links):
            hosts = tuple(h for end in ends if (h := self._host_of(end.node)) is not None)
            bridged = any(self.b.is_bridge(end.node) for end in ends)
            if not bridged and len(hosts) == 2 and hosts[0] != hosts[1]:
                link_index[index] = len(crossing)
                crossing.append(([*path, "vni"], f"links[{path[1]}]", spec.get("vni"), hosts))
            elif "vni" in spec:
                self.b.problem([*path, "vni"], "a vni is for a link whose ends sit on different hosts")
        bridge_index: dict[str, int] = {}
        for name, spec in self.b.bridges.items():
            if len(self.bridge_hosts.get(name, ())) > 1:
                bridge_index[name] = len(crossing)
                crossing.append((["bridges", name, "vni"], f"bridge {name}", spec.get("vni"), self.bridge_hosts[name]))
            elif "vni" in spec:
                self.b.problem(["bridges", name, "vni"], "a vni is for a bridge that spans hosts")
        owners: dict[int, str] = {}
        vnis = []
        taken = {declared for _, _, declared, _ in crossing if declared is not None}
        free = (vni for vni in itertools.count(vxlan.vni_base) if vni not in taken)
        for path, what, declared, _ in crossing:
            vni = declared if declared is not None else next(free)
            if vni > VNI_MAX:
                self.b.problem(path[:-1], f"vni {vni} (vni_base {vxlan.vni_base} + {vni - vxlan.vni_base}) is above {VNI_MAX}")
            elif vni in owners:
                self.b.problem(path if declared is not None else path[:-1], f"vni {vni} is also the vni of {owners[vni]}")
            owners.setdefault(vni, what)
            vnis.append(vni)
        self.b.lab_links = tuple(
            dataclasses.replace(link, vni=vnis[link_index[index]]) if index in link_index else link
            for index, link in enumerate(self.b.lab_links)
        )
        self.b.bridge_vnis = {name: vnis[index] for name, index in bridge_index.items()}
        self._port_devices()
        self._mtus(crossing)

    def _port_devices(self) -> None:
        taken = {self.b.prefix + name for name in self.b.bridges}
        for name, vni in self.b.bridge_vnis.items():
            device = port_device(self.b.prefix, vni)
            if len(device) > IFNAME_MAX:
                message = f"its VXLAN port '{device}' (with prefix) is longer than {IFNAME_MAX} characters"
                self.b.problem(["bridges", name], message)
            elif device in taken:
                self.b.problem(["bridges", name], f"its VXLAN port '{device}' clashes with a bridge of that name")

    def _mtus(self, crossing: list[tuple[list[Any], str, int | None, tuple[str, ...]]]) -> None:
        """A declared MTU on a cross-host link or spanning bridge fits the overlay of its hosts' underlays."""
        def overlay(hosts: tuple[str, ...]) -> int:
            return min(self.machines[h].overlay_mtu for h in hosts if h in self.machines)

        for path, ends, _ in self.b.links:
            bridged = [end for end in ends if self.b.is_bridge(end.node)]
            hosts = self.bridge_hosts.get(bridged[0].node, ()) if bridged else tuple(
                h for end in ends if (h := self._host_of(end.node)) is not None
            )
            if len(set(hosts)) < 2:
                continue
            for end in ends:
                mtu = end.spec.get("mtu")
                if end.node in self.b.namespaces and mtu is not None and mtu > overlay(hosts):
                    self.b.problem(
                        [*end.path, "mtu"] if end.path[0] == "namespaces" else path,
                        f"mtu {mtu} cannot fit VXLAN over the underlay of {', '.join(dict.fromkeys(hosts))}: "
                        f"at most {overlay(hosts)}",
                    )
        for name, spec in self.b.bridges.items():
            hosts = self.bridge_hosts.get(name, ())
            if len(hosts) > 1 and spec.get("mtu") is not None and spec["mtu"] > overlay(hosts):
                self.b.problem(
                    ["bridges", name, "mtu"],
                    f"mtu {spec['mtu']} cannot fit VXLAN over the underlay of {', '.join(hosts)}: at most {overlay(hosts)}",
                )
