"""Drift: what the kernel has versus what the lab declares (`nsgen status`).

The kernel's state read from `ip -j` into the lines the lab's facts are written in
(`nsgen.plan.declared`), and the two compared line by line, as verify.sh's runtime compares them
(`expect`, over `ip -o`): every difference is one line, `ns-2: route default via 172.16.0.1:
missing`, `ns-0: eth0 mtu 9000: different (1500)`, `ns-0: device eth9: extra`. A missing namespace
or device is one line: what it holds is not listed. Beyond verify.sh, status also names what
carries the lab's prefix and is not the lab's.
"""

import json
import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from nsgen.plan.commands import canonical_rate
from nsgen.plan.declared import SERVICE_LINE, Difference, Place, declared, places
from nsgen.run.records import RECORDS
from nsgen.topology.model import ROOT, Lab

#: A route via a gateway, and the same route without its device (as a topology may declare it).
_VIA = re.compile(r"^(route .* via [^ ]+) dev [^ ]+$")
#: A single-valued fact: its key (`eth0 mtu`) and value.
_SINGLE = re.compile(r"^(service [^ ]+|[^ ]+ (?:mtu|mac|master|qdisc|rate)) ([^ ]+)$")
#: How many places are read from the kernel at once.
READERS = 32
#: The qdiscs of link conditions: any other root qdisc is the kernel's own (noqueue, pfifo_fast, ...).
_CONDITION_QDISCS = ("tbf", "netem")


def _ip_json(*args: str) -> list[dict]:
    result = subprocess.run(["ip", "-j", *args], capture_output=True, text=True, check=False)
    return json.loads(result.stdout) if result.returncode == 0 and result.stdout.strip() else []


def _sysctl(netns: str, key: str) -> str | None:
    path = "/proc/sys/" + key.replace(".", "/")
    result = subprocess.run(["ip", "netns", "exec", netns, "cat", path], capture_output=True, text=True, check=False)
    return result.stdout.strip() if result.returncode == 0 else None


def _link_lines(entry: dict) -> list[str]:
    name = entry["ifname"]
    lines = [f"device {name}", *([f"{name} up"] if "UP" in entry.get("flags", []) else []), f"{name} mtu {entry['mtu']}"]
    lines += [f"{name} mac {entry['address']}"] if entry.get("link_type") == "ether" and "address" in entry else []
    return lines + ([f"{name} master {entry['master']}"] if "master" in entry else [])


def _route_line(entry: dict) -> str | None:
    if entry.get("protocol") == "kernel" or entry.get("type", "unicast") != "unicast":
        return None  # the kernel's own (a connected subnet, link-local), or not a route to forward by
    words = ["route", entry["dst"]]
    words += ["via", entry["gateway"]] if "gateway" in entry else []
    return " ".join(words + (["dev", entry["dev"]] if "dev" in entry else []))


def _qdisc_lines(entry: dict) -> list[str]:
    """A device's root qdisc of a link condition, and its rate (tc -j gives bytes a second)."""
    if not entry.get("root") or entry.get("kind") not in _CONDITION_QDISCS:
        return []
    rate = entry.get("options", {}).get("rate")
    rate = rate.get("rate") if isinstance(rate, dict) else rate
    lines = [f"{entry['dev']} qdisc {entry['kind']}"]
    return lines + ([f"{entry['dev']} rate {canonical_rate(rate * 8)}"] if isinstance(rate, int) and rate else [])


def _tc_json(netns: str | None) -> list[dict]:
    where = ["-n", netns] if netns else []
    result = subprocess.run(["tc", *where, "-j", "qdisc", "show"], capture_output=True, text=True, check=False)
    return json.loads(result.stdout) if result.returncode == 0 and result.stdout.strip() else []


def services_dir(lab: Lab) -> Path:
    """Where setup keeps the files of `lab`'s services: one directory per namespace under it."""
    return RECORDS / lab.key


def _alive(pid_file: Path, netns: str) -> bool:
    """Whether the service of `pid_file` runs: its process is there, in `netns`."""
    pid = pid_file.read_text().strip() if pid_file.exists() else ""
    try:
        return pid.isdigit() and os.path.samefile(f"/proc/{pid}/ns/net", f"/run/netns/{netns}")
    except OSError:
        return False


def _service_lines(services: Path, netns: str) -> list[str]:
    """`service NAME running|exited`, for each service started in `netns` (by its PID file)."""
    files = sorted((services / netns).glob("*.pid"))
    return [f"service {file.stem} {'running' if _alive(file, netns) else 'exited'}" for file in files]


def service_report(lab: Lab, difference: Difference) -> list[str]:
    """For a service that is not running: its exit status, and the last lines of its log."""
    service = SERVICE_LINE.match(difference.line)
    if service is None or difference.netns is None or difference.kind == "extra":
        return []
    base = services_dir(lab) / difference.netns / service.group(1)
    status = base.with_suffix(".status")
    said = f"exit status {status.read_text().strip()}" if status.exists() else "no exit status (it was killed)"
    log = base.with_suffix(".log")
    lines = log.read_text(errors="replace").splitlines()[-5:] if log.exists() else []
    return [f"  {said}; the end of {log}:" if lines else f"  {said}; its log is empty", *(f"  | {line}" for line in lines)]


def kernel_lines(netns: str | None, devices: tuple[str, ...] = (), services: Path | None = None) -> list[str]:
    """What the kernel has in `netns` (in the root namespace: of `devices` and their bridge ports), as
    lines; one dump of each kind (`ip -j addr` holds the links too); with `services`, the state of
    the services started in `netns`."""
    if netns:  # one `ip -batch` for the addresses (and links) and the IPv4 routes: a JSON array a line
        command = ["ip", "-n", netns, "-j", "-batch", "-"]
        batch = subprocess.run(command, input="addr show\nroute show\n", capture_output=True, text=True, check=False)
        links, routes = ([json.loads(line) for line in batch.stdout.splitlines() if line.strip()] + [[], []])[:2]
        routes += _ip_json("-n", netns, "-6", "route", "show")
    else:
        links = [e for e in _ip_json("addr", "show") if e["ifname"] in devices or e.get("master") in devices]
        routes = []
    lines = [line for entry in links for line in _link_lines(entry)]
    lines += [
        f"{entry['ifname']} address {a['local']}/{a['prefixlen']}"
        for entry in links
        if netns or entry["ifname"] in devices
        for a in entry.get("addr_info", [])
        if not a["local"].startswith("fe80:")
    ]
    qdiscs = [e for e in _tc_json(netns) if netns or e.get("dev") in devices]
    lines += [line for entry in qdiscs for line in _qdisc_lines(entry)]
    lines += _service_lines(services, netns) if services and netns else []
    return lines + [line for line in map(_route_line, routes) if line]


def compare(place: Place, kernel: list[str]) -> list[Difference]:
    """The differences at `place` between its declared lines and the kernel's (`kernel_lines`)."""
    have = set(kernel) | {m.group(1) for line in kernel if (m := _VIA.match(line))}
    value = {m.group(1): m.group(2) for line in kernel if (m := _SINGLE.match(line))}
    result, gone = [], set()
    for line in place.lines:
        device = line.removeprefix("device ").split(" ")[0]
        if device in gone or line in have:
            continue
        found = Difference(place.netns, place.node, line, "missing")
        if line.startswith("device "):
            gone.add(device)
        elif line.endswith(" up"):
            found = Difference(place.netns, place.node, line, "different", "down")
        elif SERVICE_LINE.match(line) and line.rsplit(" ", 1)[0] not in value:
            pass  # never started, or its files are gone
        elif m := _SINGLE.match(line):
            have_value = value.get(m.group(1), "no " + m.group(1).split(" ")[1])
            found = Difference(place.netns, place.node, line, "different", have_value)
        elif line.startswith("sysctl "):
            key, wanted = line.removeprefix("sysctl ").split("=", 1)
            have_value = _sysctl(place.netns or "", key) or "unreadable"
            if have_value == wanted:
                continue
            found = Difference(place.netns, place.node, line, "different", have_value)
        result.append(found)
    return result + _extras(place, kernel)


def _is_extra(place: Place, line: str, want: set[str]) -> bool:
    """In a namespace: a device (but `lo`), an address of a declared device, a route; in the root
    namespace: a port of a lab bridge."""
    device = line.removeprefix("device ").split(" ")[0]
    in_namespace = place.netns is not None
    if line.startswith("device "):
        return in_namespace and device != "lo"
    if " qdisc " in line or " rate " in line:  # a condition no end declares (a different one is named as such)
        key = line.rsplit(" ", 1)[0]
        return in_namespace and f"device {device}" in want and not any(w.rsplit(" ", 1)[0] == key for w in want)
    if " address " in line:
        return in_namespace and f"device {device}" in want
    if line.startswith("route "):
        return in_namespace and not ((m := _VIA.match(line)) and m.group(1) in want)
    if SERVICE_LINE.match(line):  # one the lab does not declare (one that does and exited is named as such)
        return not any(w.rsplit(" ", 1)[0] == line.rsplit(" ", 1)[0] for w in want)
    return " master " in line


def _extras(place: Place, kernel: list[str]) -> list[Difference]:
    """What the kernel has at `place` beyond its declared lines, sorted."""
    want = set(place.lines)
    extra = [line for line in sorted(set(kernel) - want) if _is_extra(place, line, want)]
    return [Difference(place.netns, place.node, line, "extra") for line in extra]


def differences(lab: Lab) -> list[Difference]:
    """Every difference between the kernel and `lab`: missing, different, extra."""
    present = {e["name"] for e in _ip_json("netns", "list")}
    every = places(declared(lab))
    there = [place for place in every if place.netns is None or place.netns in present]
    # each place read in a thread of its own: the reading is `ip` and `tc` processes, waited for
    with ThreadPoolExecutor(max_workers=READERS) as pool:
        read = pool.map(lambda p: kernel_lines(p.netns, p.devices, services_dir(lab)), there)
        kernel = dict(zip(map(id, there), read, strict=True))
    found: list[Difference] = []
    for place in every:
        if id(place) not in kernel:
            found.append(Difference(place.netns, place.node, "namespace", "missing"))
            continue
        found += compare(place, kernel[id(place)])
    if lab.prefix:  # what carries the lab's prefix but is not the lab's
        ours = {ns.netns for ns in lab.namespaces} | set(lab.root_devices)
        root = {e["ifname"] for e in _ip_json("link", "show")}
        found += [Difference(name, name, "namespace", "extra") for name in sorted(present - ours) if name.startswith(lab.prefix)]
        found += [Difference(None, ROOT, f"device {d}", "extra") for d in sorted(root - ours) if d.startswith(lab.prefix)]
    return found
