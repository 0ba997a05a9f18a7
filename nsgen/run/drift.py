"""Drift: what the kernel has versus what the lab declares (`nsgen status`).

The kernel is read and compared by the one reader the lab's scripts carry: the runtime's `compare_facts`
(templates/runtime/_facts.sh.j2, by the kinds of `nsgen.topology.facts`), run here in bash over each
place's declared lines, as verify.sh runs it. Every difference comes back as fixed fields and is
typed again by the fact table: `ns-2: route default via 172.16.0.1: missing`, `ns-0: eth0 mtu 9000:
different (1500)`, `ns-0: device eth9: extra`. A missing namespace or device is one difference:
what it holds is not listed. Beyond verify.sh, status also names what carries the lab's prefix
and is not the lab's.
"""

import json
import os
import shlex
import subprocess
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

from nsgen.plan.declared import Place, declared, places
from nsgen.plan.declared import accepted as accepted_matches
from nsgen.problems import Problem, TopologyError
from nsgen.render.templates import template
from nsgen.run.records import RECORDS
from nsgen.topology.ends import ROOT, owned
from nsgen.topology.facts import Difference, Fact, parse
from nsgen.topology.model import Lab

#: How many bash readers run at once, each over its share of the places.
READERS = 16


def _ip_json(*args: str) -> list[dict]:
    result = subprocess.run(["ip", "-j", *args], capture_output=True, text=True, check=False)
    return json.loads(result.stdout) if result.returncode == 0 and result.stdout.strip() else []


def namespaces() -> list[str]:
    """The network namespaces of this machine, by name."""
    return [entry["name"] for entry in _ip_json("netns", "list")]


@cache
def reader() -> str:
    """The runtime's reader and comparison, as every verify.sh carries them."""
    return template("runtime/_facts.sh.j2").render()


def program(lab: Lab, share: list[Place]) -> str:
    """A bash program that compares `share`'s places of `lab` with the kernel (extras too) and prints
    each difference as tab-separated fields (`drift_rows`)."""
    accepted = template("lab/_accepted.sh.j2").render(accepted=accepted_matches(lab))
    lines = ["set -Euo pipefail", "export LC_ALL=C", f"lab_key={shlex.quote(lab.key)}", accepted, reader(), "with_extras=1"]
    for place in share:
        words = shlex.join([place.netns or "", place.node, *place.devices])
        lines += [f"compare_facts {words} <<'NSGEN'", *place.lines, "NSGEN"]
    lines.append("""if (( ${#drift_rows[@]} > 0 )); then printf '%s\\n' "${drift_rows[@]}"; fi""")
    return "\n".join(lines) + "\n"


def _read(lab: Lab, share: list[Place]) -> list[Difference]:
    result = subprocess.run(["bash", "-c", program(lab, share)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"the kernel's reader failed (exit status {result.returncode}): {result.stderr.strip()}")
    return rows(result.stdout)


def rows(text: str) -> list[Difference]:
    """The differences the reader printed, one a line as `drift_rows`' fields (KIND, NETNS, NODE, LINE, HAVE)."""
    found = []
    for row in text.splitlines():
        kind, netns, node, line, have = row.split("\t")
        fact = Fact(netns or None, node, "namespace") if line == "namespace" else parse(line, netns or None, node)
        found.append(Difference(fact, kind, have))
    return found


def services_dir(lab: Lab) -> Path:
    """Where setup keeps the files of `lab`'s services: one directory per namespace under it."""
    return RECORDS / lab.key


def service_report(lab: Lab, difference: Difference) -> list[str]:
    """For a service that is not running: its exit status, and the last lines of its log."""
    if not reported(difference):
        return []
    base = services_dir(lab) / (difference.netns or "") / difference.fact.device
    status = base.with_suffix(".status")
    log = base.with_suffix(".log")
    lines = log.read_text(errors="replace").splitlines()[-5:] if log.exists() else []
    return service_said(status.read_text().strip() if status.exists() else "", str(log), lines)


def reported(difference: Difference) -> bool:
    """Whether a service report goes with `difference`: a declared service that is not running."""
    return difference.fact.kind == "service" and difference.netns is not None and difference.kind != "extra"


def service_said(status: str, log: str, lines: list[str]) -> list[str]:
    """A service's report: its exit status (`status`, '' where it has none), then the end of its `log`."""
    said = f"exit status {status}" if status else "no exit status (it was killed)"
    return [f"  {said}; the end of {log}:" if lines else f"  {said}; its log is empty", *(f"  | {line}" for line in lines)]


def differences(lab: Lab) -> list[Difference]:
    """Every difference between the kernel and `lab`: missing, different, extra. Only root enters a
    lab namespace (nsenter): as anyone else every object would read as missing, so it is refused."""
    if os.geteuid() != 0:
        raise TopologyError([Problem(f"lab {lab.key}", "", "reading its namespaces needs root (nsenter): run it as root")])
    every = places(declared(lab))
    # the namespaces in shares, in order, then the root namespace in one of its own (it reads every
    # device of the machine: as long as 70 namespaces beside 1000)
    spaces = [place for place in every if place.netns is not None]
    size = max(1, -(-len(spaces) // (READERS - 1)))
    shares = [spaces[start : start + size] for start in range(0, len(spaces), size)]
    shares += [root] if (root := [place for place in every if place.netns is None]) else []
    # each share read by a bash of its own, in order: the reading is `ip` and `tc` processes, waited for
    with ThreadPoolExecutor(max_workers=READERS) as pool:
        found = [difference for read in pool.map(lambda share: _read(lab, share), shares) for difference in read]
    if lab.prefix:  # what carries the lab's prefix but is not the lab's
        present = set(namespaces())
        parents = {end.device for link in lab.links for end in (link.a, link.b) if not owned(end)}
        ours = {ns.netns for ns in lab.namespaces} | set(lab.root_devices) | parents
        root = {e["ifname"] for e in _ip_json("link", "show")}
        theirs = sorted(name for name in present - ours if name.startswith(lab.prefix))
        found += [Difference(Fact(name, name, "namespace"), "extra") for name in theirs]
        found += [Difference(Fact(None, ROOT, "device", d), "extra") for d in sorted(root - ours) if d.startswith(lab.prefix)]
    return found
