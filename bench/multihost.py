"""A 3-host lab of 300 namespaces on emulated hosts: the Ansible run's wall time against the slowest host's
local setup, i.e. what deploying through Ansible (SSH, ControlPersist, pipelining) costs over running each
host's setup.sh on the host itself.

    python3 bench/multihost.py [--namespaces 300] [--repeats 3] [-o bench/RESULTS.md]

Each repetition: every host's setup.sh run locally inside its host, all three at once (the time is the
slowest host's), then their teardown.sh; then the playbook's `up` through ansible-playbook from the
controller (the switch namespace), its `verify`, its `down`. The lab: 100 namespaces a host, all on one
bridge spanning the three hosts, and a ring of cross-host VXLAN links (namespace i to namespace i + 100).
Needs root, iproute2, openssh-server and ansible-core (the `ansible` extra). Not a test.
"""

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from nsgen.render import multihost  # noqa: E402
from nsgen.run import emulated_hosts, playbook  # noqa: E402
from nsgen.validate import sources  # noqa: E402

PREFIX = "bmh-"
HOSTS = 3
MARKER = "## Multi-host: Ansible vs local setup (bench/multihost.py)"


def topology(count: int, addresses: list[str]) -> dict:
    per_host = count // HOSTS
    names = [f"n{i:03d}" for i in range(count)]
    return {
        "name": "mh",
        "description": f"{count} namespaces on {HOSTS} hosts: one spanning bridge, a ring of VXLAN links",
        "prefix": PREFIX,
        "hosts": {f"h{k + 1}": {"address": address, "namespaces": names[k * per_host:(k + 1) * per_host]}
                  for k, address in enumerate(addresses)},
        "namespaces": {name: None for name in names},
        "bridges": {"lan": {"hosts": [f"h{k + 1}" for k in range(HOSTS)], "subnet": "10.64.0.0/22"}},
        "links": [[f"{name}:lan", f"lan:p{i}"] for i, name in enumerate(names)]
        + [{"endpoints": [f"{names[i]}:o", f"{names[(i + per_host) % count]}:i"], "subnet": f"10.80.{i * 4 // 256}.{i * 4 % 256}/30"}
           for i in range(count)],
    }


def timed(commands: list[list[str]], env: dict[str, str] | None = None, check: bool = True) -> tuple[float, list[float], str]:
    """Run `commands` at once; the wall time, each one's time, their output. Each must succeed (`check`)."""
    start = time.monotonic()
    running = [(subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env), c) for c in commands]
    each, outputs = [], []
    for process, command in running:
        out, _ = process.communicate()
        each.append(time.monotonic() - start)
        outputs.append(out)
        if check and process.returncode != 0:
            raise SystemExit(f"failed ({process.returncode}): {' '.join(command)}\n{out[-3000:]}")
    return time.monotonic() - start, each, "".join(outputs)


def median(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} s ({min(values):.2f}–{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--namespaces", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("-o", "--output", type=Path, default=BENCH / "RESULTS.md")
    args = parser.parse_args()
    hosts, access = emulated_hosts.up(PREFIX, HOSTS)
    try:
        document = topology(args.namespaces, [str(h.address.ip) for h in hosts])
        loaded = sources.from_document(document, "mh.yaml", "mh.yaml")
        out = Path(tempfile.mkdtemp(prefix="nsgen-bench-mh-")) / "mh"
        multihost.write(loaded, out)
        parts = {m.name: multihost.host_lab(loaded.lab, m.name) for m in loaded.lab.machines}
        env = {**os.environ, **access.ansible_env(), "PYTHONPATH": str(BENCH.parent)}
        ansible = playbook.ansible_playbook()
        assert ansible is not None, "ansible-playbook not found: pip install 'nsgen[ansible]'"

        def ansible(tag: str) -> float:
            argv = emulated_hosts.controller_argv(PREFIX, ["env", f"--chdir={out}", ansible, "site.yml", "--tags", tag])
            wall, _, output = timed([argv], env, check=tag != "verify")
            if tag == "verify":  # one line per host: "lab mh: N passed, M failed"
                counts = [tuple(map(int, m)) for m in re.findall(r"lab mh: (\d+) passed, (\d+) failed", output)]
                checks.append((sum(c[0] for c in counts), sum(c[1] for c in counts)))
            return wall

        local_up, local_down, slowest, ansible_up, ansible_verify, ansible_down = [], [], [], [], [], []
        checks: list[tuple[int, int]] = []
        for round_ in range(args.repeats):
            wall, each, _ = timed([emulated_hosts.argv(h, ["bash", str(out / f"h{k + 1}" / "setup.sh")]) for k, h in enumerate(hosts)])
            local_up.append(wall)
            slowest.append(max(each))
            local_down.append(timed([emulated_hosts.argv(h, ["bash", str(out / f"h{k + 1}" / "teardown.sh")]) for k, h in enumerate(hosts)])[0])
            ansible_up.append(ansible("up"))
            ansible_verify.append(ansible("verify"))
            ansible_down.append(ansible("down"))
            print(f"round {round_ + 1}: local setup {wall:.2f} s, ansible up {ansible_up[-1]:.2f} s, "
                  f"verify {ansible_verify[-1]:.2f} s ({checks[-1][0]} passed, {checks[-1][1]} failed), "
                  f"down {ansible_down[-1]:.2f} s", flush=True)
    finally:
        emulated_hosts.down(PREFIX)
    overhead = [a - s for a, s in zip(ansible_up, slowest, strict=True)]
    tunnels = sum(len(p.tunnels) for p in parts.values())
    section = "\n".join([
        MARKER,
        "",
        f"{args.namespaces} namespaces on {HOSTS} emulated hosts ({args.namespaces // HOSTS} each), one bridge spanning all"
        f" three, a ring of {args.namespaces} cross-host VXLAN links ({tunnels} VXLAN devices in all); "
        f"{args.repeats} repetitions, medians (range). ansible-core {ansible_version()}, ControlPersist 60 s and pipelining on,"
        f" forks 50; this machine: {os.cpu_count()} cores, kernel {platform.release()}.",
        "",
        "| what | time |",
        "|---|---|",
        f"| every host's setup.sh, run locally, all at once (the slowest host) | {median(slowest)} |",
        f"| every host's teardown.sh, run locally | {median(local_down)} |",
        f"| `ansible-playbook site.yml --tags up` (from the controller) | {median(ansible_up)} |",
        f"| Ansible's overhead over the slowest local setup | {median(overhead)} |",
        f"| `--tags verify` (every host's pings, shown) | {median(ansible_verify)} |",
        f"| `--tags down` | {median(ansible_down)} |",
        "",
        "The first `up` of a run opens the SSH connections; later tasks and runs reuse them (ControlPersist).",
        f"verify's checks per run (passed, failed): {checks}. The emulated hosts share this machine's kernel, and so",
        "its one neighbour (ARP) table, 1024 entries (gc_thresh3) for every namespace of the machine: at this size",
        "(and with other labs on the machine) it can overflow (`dmesg`: arp_cache: neighbor table overflow), and a",
        "few pings fail; real hosts each have their own table.",
        "",
    ])
    text = args.output.read_text() if args.output.exists() else ""
    if MARKER in text:
        head, _, rest = text.partition(MARKER)
        following = rest.find("\n## ")
        text = head + (rest[following + 1:] if following >= 0 else "")
    args.output.write_text(text.rstrip("\n") + "\n\n" + section)
    print(section)


def ansible_version() -> str:
    try:
        from ansible.release import __version__

        return __version__
    except ImportError:
        return "?"


if __name__ == "__main__":
    main()
