"""The interfaces phase: every declared interface (namespaces' and the root's) and every bridge's own
device, with their declared addresses, each address given to one owner only."""

from typing import Any

from nsgen.topology.ends import ROOT
from nsgen.topology.model import IPAddress, IPInterface, interface_address
from nsgen.validate import names
from nsgen.validate.context import Context, Path, Port


def declare(ctx: Context) -> None:
    """Ports for every declared interface and bridge, their addresses parsed and claimed."""
    root_interfaces = (ctx.doc.get("host") or {}).get("interfaces") or {}
    declared = [(name, ["namespaces", name], spec.get("interfaces") or {}) for name, spec in ctx.namespaces.items()]
    for node, path, interfaces in [*declared, (ROOT, ["host"], root_interfaces)]:
        for ifname, spec in interfaces.items():
            port = Port(node, ifname, [*path, "interfaces", ifname], spec=spec or {})
            if node != ROOT:  # root-namespace names are checked with their prefix, as root devices
                names.check_device(ctx, port.path, ifname)
            port.addresses = _addresses(ctx, port.path, node, f"{node}:{ifname}", port.spec)
            _check_mac(ctx, port.path, port.spec.get("mac"))
            ctx.ports[(node, ifname)] = port
    for name, spec in ctx.bridges.items():
        port = Port(name, name, ["bridges", name], spec=spec)
        port.addresses = _addresses(ctx, port.path, name, f"bridge {name}", spec)
        _check_mac(ctx, port.path, spec.get("mac"))
        ctx.bridge_ports[name] = port


def _check_mac(ctx: Context, path: Path, mac: object) -> None:
    """A MAC the kernel takes for a device: not all zeros, not multicast (the first octet's lowest bit)."""
    if not isinstance(mac, str) or len(mac) != 17:
        return  # the schema names what is wrong with it
    if int(mac[:2], 16) & 1:
        ctx.problem([*path, "mac"], f"'{mac}' is a multicast address (its first octet is odd): a device's MAC is unicast")
    elif mac.replace(":", "").strip("0") == "":
        ctx.problem([*path, "mac"], f"'{mac}' is all zeros: the kernel refuses it")


def _addresses(ctx: Context, path: Path, node: str, owner: str, spec: dict[str, Any]) -> list[IPInterface]:
    result = []
    for index, text in enumerate(spec.get("addresses") or []):
        try:
            address = interface_address(text)
        except ValueError:
            ctx.problem([*path, "addresses", index], f"invalid address '{text}' (expected e.g. 172.16.0.2 or 10.0.0.1/24)")
            ctx.incomplete.add(node)
            continue
        problem = _unusable(address)
        if problem:
            ctx.problem([*path, "addresses", index], f"address {text}: {problem}")
        elif _claim(ctx, address.ip, owner, [*path, "addresses", index]):
            result.append(address)
    return result


def _unusable(address: IPInterface) -> str | None:
    """What the kernel or verify.sh would make of an address no lab interface can hold, if it is one."""
    if address.version == 6 and address.ip.ipv4_mapped is not None:  # type: ignore[union-attr]
        return f"an IPv4-mapped IPv6 address: the kernel shows it otherwise; give {address.ip.ipv4_mapped} instead"  # type: ignore[union-attr]
    if address.ip.is_loopback:
        return "a loopback address: every namespace has its own on lo"
    network = address.network
    if address.version == 4 and network.prefixlen < 31 and address.ip in (network.network_address, network.broadcast_address):
        which = "network" if address.ip == network.network_address else "broadcast"
        return f"the {which} address of {network}: give a host address"
    return None


def _claim(ctx: Context, address: IPAddress, owner: str, path: Path) -> bool:
    if address in ctx.owners:
        ctx.problem(path, f"address {address} is already given to {ctx.owners[address]}")
        return False
    ctx.owners[address] = owner
    return True
