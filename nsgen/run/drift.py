"""Drift: what the kernel has versus what the lab declares (`nsgen status`).

The declared facts (`nsgen.plan.declared`) read from `ip -j`, and what the kernel has in the lab's
namespaces and bridges that the lab does not declare. Every difference is one line: `ns-2: route
default via 172.16.0.1: missing`, `ns-0: eth0 mtu 9000: different (1500)`, `ns-0: device eth9: extra`.
A missing namespace or device is one line: what it holds is not listed.
"""

import json
import subprocess

from nsgen.plan.declared import Expect, declared
from nsgen.topology.model import ROOT, Lab


def _ip_json(*args: str) -> list[dict]:
    result = subprocess.run(["ip", "-j", *args], capture_output=True, text=True, check=False)
    return json.loads(result.stdout) if result.returncode == 0 and result.stdout.strip() else []


def _sysctl(netns: str, key: str) -> str | None:
    path = "/proc/sys/" + key.replace(".", "/")
    result = subprocess.run(["ip", "netns", "exec", netns, "cat", path], capture_output=True, text=True, check=False)
    return result.stdout.strip() if result.returncode == 0 else None


class _Kernel:
    """What one namespace (the root when None) has, read once."""

    def __init__(self, netns: str | None):
        where = ("-n", netns) if netns else ()
        self.netns = netns
        self.links = {e["ifname"]: e for e in _ip_json(*where, "link", "show")}
        self.addresses = {e["ifname"]: e.get("addr_info", []) for e in _ip_json(*where, "addr", "show")}
        self.routes: list[dict] | None = None
        self.where = where

    def route_list(self) -> list[dict]:
        if self.routes is None:
            self.routes = _ip_json(*self.where, "route", "show") + _ip_json(*self.where, "-6", "route", "show")
        return self.routes

    def address_set(self, device: str) -> set[str]:
        return {f"{a['local']}/{a['prefixlen']}" for a in self.addresses.get(device, []) if not a["local"].startswith("fe80:")}


def _route_words(entry: dict) -> str:
    words = [entry["dst"]]
    words += ["via", entry["gateway"]] if "gateway" in entry else []
    words += ["dev", entry["dev"]] if "dev" in entry else []
    return " ".join(words)


def _route_matches(entry: dict, text: str) -> bool:
    words = text.split()
    if entry.get("dst") != words[0]:
        return False
    pairs = dict(zip(words[1::2], words[2::2], strict=False))
    return all(entry.get({"via": "gateway"}.get(k, k)) == v for k, v in pairs.items())


def _check(fact: Expect, kernel: _Kernel) -> str | None:
    """None when the kernel has `fact`, else `missing` or `different (WHAT IT HAS)`."""
    link = kernel.links.get(fact.device) if fact.device else None
    if fact.kind == "device":
        return None if link else "missing"
    if fact.kind == "up":
        return None if "UP" in link["flags"] else "different (down)"
    if fact.kind == "address":
        return None if fact.value in kernel.address_set(fact.device) else "missing"
    if fact.kind == "mtu":
        return None if str(link["mtu"]) == fact.value else f"different ({link['mtu']})"
    if fact.kind == "mac":
        return None if link.get("address", "").lower() == fact.value else f"different ({link.get('address')})"
    if fact.kind == "master":
        return None if link.get("master") == fact.value else f"different ({link.get('master') or 'no master'})"
    if fact.kind == "route":
        return None if any(_route_matches(r, fact.value) for r in kernel.route_list()) else "missing"
    if fact.kind == "sysctl":
        have = _sysctl(fact.netns or "", fact.device)
        return None if have == fact.value else f"different ({have})"
    return None


def differences(lab: Lab) -> list[str]:
    """One line per difference between the kernel and `lab`: missing, different, extra."""
    lines: list[str] = []
    present = {e["name"] for e in _ip_json("netns", "list")}
    kernels: dict[str | None, _Kernel] = {}
    gone: set[tuple[str | None, str]] = set()
    facts = declared(lab)
    for fact in facts:
        if fact.kind == "namespace":
            if fact.netns not in present:
                lines.append(f"{fact.label}: missing")
                gone.add((fact.netns, ""))
            continue
        if (fact.netns, "") in gone or (fact.netns, fact.device) in gone:
            continue
        kernel = kernels.get(fact.netns) or kernels.setdefault(fact.netns, _Kernel(fact.netns))
        result = _check(fact, kernel)
        if result is not None:
            lines.append(f"{fact.label}: {result}")
            if fact.kind == "device":
                gone.add((fact.netns, fact.device))
    # what the kernel has and the lab does not: devices, addresses, routes in its namespaces
    for ns in lab.namespaces:
        kernel = kernels.get(ns.netns)
        if kernel is None:
            continue
        mine = [f for f in facts if f.netns == ns.netns]
        devices = {f.device for f in mine if f.kind == "device"}
        lines += [f"{ns.name}: device {name}: extra" for name in sorted(kernel.links.keys() - devices - {"lo"})]
        for device in sorted(devices & kernel.links.keys()):
            wanted = {f.value for f in mine if f.kind == "address" and f.device == device}
            lines += [f"{ns.name}: {device} address {a}: extra" for a in sorted(kernel.address_set(device) - wanted)]
        routes = [f.value for f in mine if f.kind == "route"]
        for entry in kernel.route_list():
            if entry.get("protocol") == "kernel" or entry.get("type", "unicast") != "unicast":
                continue
            if not any(_route_matches(entry, text) for text in routes):
                lines.append(f"{ns.name}: route {_route_words(entry)}: extra")
    root = kernels.get(None) or _Kernel(None)
    for bridge in lab.bridges:
        ports = {f.device for f in facts if f.kind == "master" and f.value == bridge.device}
        extra = [name for name, e in root.links.items() if e.get("master") == bridge.device and name not in ports]
        lines += [f"{ROOT}: {name} master {bridge.device}: extra" for name in sorted(extra)]
    if lab.prefix:  # what carries the lab's prefix but is not the lab's
        ours = {ns.netns for ns in lab.namespaces} | set(lab.root_devices)
        lines += [f"{name}: namespace: extra" for name in sorted(present - ours) if name.startswith(lab.prefix)]
        lines += [f"{ROOT}: device {d}: extra" for d in sorted(root.links.keys() - ours) if d.startswith(lab.prefix)]
    return lines
