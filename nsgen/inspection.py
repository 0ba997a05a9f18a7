"""Reading the kernel (`ip -j`) to see how much of a lab is up: present, missing, down, extra."""

import json
import subprocess
from dataclasses import dataclass

from nsgen.model import BridgePort, Interface, Lab

#: Row states that mean the lab is fully up.
GOOD = frozenset({"present"})


@dataclass(frozen=True)
class Row:
    """One object of the lab (or one the kernel has and the lab does not), and its state."""

    kind: str
    name: str
    state: str
    detail: str = ""


@dataclass(frozen=True)
class Report:
    rows: tuple[Row, ...]

    @property
    def fully_up(self) -> bool:
        return all(row.state in GOOD for row in self.rows)


def _ip_json(*args: str) -> list[dict]:
    result = subprocess.run(["ip", "-j", *args], capture_output=True, text=True, check=False)
    return json.loads(result.stdout) if result.returncode == 0 and result.stdout.strip() else []


def _devices(netns: str | None = None) -> dict[str, dict]:
    """The devices of a namespace (the root when None) with their flags and addresses, by name."""
    return {entry["ifname"]: entry for entry in _ip_json(*(["-n", netns] if netns else []), "addr", "show")}


def _interface_row(kind: str, label: str, wanted: Interface | None, found: dict | None) -> Row:
    if found is None:
        return Row(kind, label, "missing")
    if "UP" not in found.get("flags", []):
        return Row(kind, label, "down")
    have = {(a["local"], a["prefixlen"]) for a in found.get("addr_info", []) if a.get("scope") != "link"}
    lacking = [a.with_prefixlen for a in (wanted.addresses if wanted else ()) if (str(a.ip), a.network.prefixlen) not in have]
    if lacking:
        return Row(kind, label, "no address", ", ".join(lacking))
    return Row(kind, label, "present", ", ".join(f"{ip}/{n}" for ip, n in sorted(have)))


def inspect(lab: Lab) -> Report:
    """What the kernel has of `lab` right now."""
    rows: list[Row] = []
    present_netns = {entry["name"] for entry in _ip_json("netns", "list")}
    for ns in lab.namespaces:
        if ns.netns not in present_netns:
            rows.append(Row("namespace", ns.netns, "missing"))
            rows += [Row("interface", f"{ns.netns}:{iface.name}", "missing") for iface in ns.interfaces]
            continue
        rows.append(Row("namespace", ns.netns, "present"))
        devices = _devices(ns.netns)
        for iface in ns.interfaces:
            rows.append(_interface_row("interface", f"{ns.netns}:{iface.name}", iface, devices.get(iface.name)))
        known = {iface.name for iface in ns.interfaces} | {"lo"}
        rows += [Row("interface", f"{ns.netns}:{name}", "extra") for name in sorted(devices.keys() - known)]
    root = _devices()
    for bridge in lab.bridges:
        own = Interface(bridge.name, bridge.device, bridge.addresses)
        rows.append(_interface_row("bridge", bridge.device, own, root.get(bridge.device)))
    hosts = {iface.device: iface for iface in lab.host}
    for link in lab.links:
        for end in (link.a, link.b):
            if end.netns is None:
                kind = "bridge port" if isinstance(end, BridgePort) else "host end"
                rows.append(_interface_row(kind, end.device, hosts.get(end.device), root.get(end.device)))
    if lab.prefix:  # what carries the lab's prefix but is not the lab's
        ours = {ns.netns for ns in lab.namespaces} | set(lab.root_devices)
        rows += [Row("namespace", n, "extra") for n in sorted(present_netns - ours) if n.startswith(lab.prefix)]
        rows += [Row("device", d, "extra") for d in sorted(root.keys() - ours) if d.startswith(lab.prefix)]
    return Report(tuple(rows))


def table(report: Report) -> str:
    """The report as aligned text, with a closing line."""
    widths = [max([len(header)] + [len(getattr(row, field)) for row in report.rows]) for header, field in
              (("KIND", "kind"), ("NAME", "name"), ("STATE", "state"))]
    lines = [f"{'KIND':<{widths[0]}}  {'NAME':<{widths[1]}}  {'STATE':<{widths[2]}}  DETAIL"]
    lines += [f"{r.kind:<{widths[0]}}  {r.name:<{widths[1]}}  {r.state:<{widths[2]}}  {r.detail}".rstrip() for r in report.rows]
    bad = sum(row.state not in GOOD for row in report.rows)
    lines.append("lab is fully up" if report.fully_up else f"lab is not fully up: {bad} object(s) missing, down or extra")
    return "\n".join(lines)
