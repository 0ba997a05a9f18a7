"""A 3-host lab of 300 namespaces on emulated hosts: what running it through Ansible costs over running each
host's script on the host itself, for up, status and apply.

    python3 bench/multihost.py [--namespaces 300] [--repeats 3] [--verify] [-o bench/RESULTS.md]

Each repetition, first locally (every host's script run inside its host, all three at once: the time is the
slowest host's): setup.sh, status.sh (the host's part compared with its kernel), apply.sh (a namespace added on
each host, with a veth to one of its namespaces), revert.sh (the change undone), teardown.sh. Then from the
controller (the switch namespace), as a user runs them: `nsgen up FILE`, `nsgen status FILE` (every host's
status.sh through the playbook, the rows brought back), `nsgen apply NEW` (status read, the change computed per
host, every host's apply.sh through the playbook), `nsgen apply FILE` (back), `nsgen down FILE`; with
`--verify`, `nsgen verify FILE` too (its 2400 pings take about 50 s). The lab: 100 namespaces a host, all on
one bridge spanning the three hosts, and a ring of cross-host VXLAN links (namespace i to namespace i + 100).
Ratios are to the slowest host's local run of the same script. Needs root, iproute2, openssh-server and
ansible-core (the `ansible` extra); run it with the Python nsgen is installed into. Not a test.
"""

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from nsgen.plan.as_found import Found  # noqa: E402
from nsgen.render import multihost, writing  # noqa: E402
from nsgen.run import emulated_hosts, records  # noqa: E402
from nsgen.validate import sources  # noqa: E402

PREFIX = "bmh-"
HOSTS = 3
MARKER = "## Multi-host: Ansible vs each host's own run (bench/multihost.py)"


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


def grown(document: dict) -> dict:
    """The lab with a namespace more on each host (x1, x2, x3), a veth to that host's first namespace."""
    hosts = {name: {**spec, "namespaces": [*spec["namespaces"], f"x{k}"]} for k, (name, spec) in enumerate(document["hosts"].items(), 1)}
    links = [{"endpoints": [f"{spec['namespaces'][0]}:x", f"x{k}:a"], "subnet": f"10.96.0.{4 * k}/30"}
             for k, spec in enumerate(document["hosts"].values(), 1)]
    return {**document, "hosts": hosts, "namespaces": {**document["namespaces"], **{f"x{k}": None for k in range(1, HOSTS + 1)}},
            "links": [*document["links"], *links]}


def timed(commands: list[list[str]], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Run `commands` at once, each of which must succeed: the wall time and the slowest one's time."""
    start = time.monotonic()
    running = [(subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env), c) for c in commands]
    each = []
    for process, command in running:
        out, _ = process.communicate()
        each.append(time.monotonic() - start)
        if process.returncode != 0:
            raise SystemExit(f"failed ({process.returncode}): {' '.join(command)}\n{out[-3000:]}")
    return time.monotonic() - start, max(each)


def median(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} s ({min(values):.2f}–{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--namespaces", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--verify", action="store_true", help="also time `nsgen verify` (about 50 s a run)")
    parser.add_argument("-o", "--output", type=Path, default=BENCH / "RESULTS.md")
    args = parser.parse_args()
    hosts, access = emulated_hosts.up(PREFIX, HOSTS)
    work = Path(tempfile.mkdtemp(prefix="nsgen-bench-mh-"))
    local: dict[str, list[float]] = {script: [] for script in ("setup.sh", "status.sh", "apply.sh", "revert.sh", "teardown.sh")}
    remote: dict[str, list[float]] = {verb: [] for verb in ("up", "status", "apply", "apply back", "verify", "down")}
    loop: list[float] = []
    try:
        document = topology(args.namespaces, [str(h.address.ip) for h in hosts])
        bigger = grown(document)
        old = sources.from_document(document, "mh.yaml", "mh.yaml")
        new = sources.from_document(bigger, "mh-grown.yaml", "mh-grown.yaml")
        (work / "mh.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
        (work / "mh-grown.yaml").write_text(yaml.safe_dump(bigger, sort_keys=False))
        found = {m.name: Found(multihost.host_lab(old.lab, m.name)) for m in old.lab.machines}
        writing.write(multihost.render(old), work / "old", multihost.executables(old.lab))
        writing.write(multihost.render_apply(old.lab, new, found), work / "change", multihost.executables(new.lab))
        where = {"apply.sh": work / "change", "revert.sh": work / "change"}
        env = {**os.environ, **access.ansible_env(), "PYTHONPATH": str(BENCH.parent)}

        def on_hosts(script: str) -> float:
            """Every host's `script`, run inside its host, all at once: the slowest host's time."""
            out = where.get(script, work / "old")
            return timed([emulated_hosts.argv(h, ["bash", str(out / f"h{k}" / script)]) for k, h in enumerate(hosts, 1)])[1]

        def nsgen(*words: str) -> float:
            argv = emulated_hosts.controller_argv(PREFIX, [sys.executable, "-m", "nsgen", *words])
            return timed([argv], env)[0]

        for round_ in range(args.repeats):
            loop.append(timed([[sys.executable, "-c", "sum(range(10**7))"]])[0])
            for script in local:
                local[script].append(on_hosts(script))
            remote["up"].append(nsgen("up", str(work / "mh.yaml")))
            remote["status"].append(nsgen("status", str(work / "mh.yaml")))
            if args.verify:
                remote["verify"].append(nsgen("verify", str(work / "mh.yaml")))
            remote["apply"].append(nsgen("apply", str(work / "mh-grown.yaml")))
            remote["apply back"].append(nsgen("apply", str(work / "mh.yaml")))
            remote["down"].append(nsgen("down", str(work / "mh.yaml")))
            print(f"round {round_ + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in {**local, **remote}.items() if v), flush=True)
    finally:
        emulated_hosts.down(PREFIX)
        records.record_path(old.lab).unlink(missing_ok=True)
        shutil.rmtree(work, ignore_errors=True)
    section = report(args, local, remote, loop)
    text = args.output.read_text() if args.output.exists() else ""
    for marker in (MARKER, "## Multi-host: Ansible vs local setup (bench/multihost.py)"):  # this section's, and its older name
        if marker in text:
            head, _, rest = text.partition(marker)
            following = rest.find("\n## ")
            text = head + (rest[following + 1:] if following >= 0 else "")
    args.output.write_text(text.rstrip("\n") + "\n\n" + section)
    print(section)


def report(args: argparse.Namespace, local: dict[str, list[float]], remote: dict[str, list[float]], loop: list[float]) -> str:
    """The section of RESULTS.md: each nsgen command beside the slowest host's own run, and their ratio."""
    pairs = [("up", "setup.sh"), ("status", "status.sh"), ("apply", "apply.sh"), ("apply back", "revert.sh"), ("down", "teardown.sh")]
    said = {verb: f"`nsgen {verb}`" for verb, _ in pairs} | {"apply back": "`nsgen apply` (back)"}
    rows = [
        f"| {said[verb]} | {median(remote[verb])} | `{script}` {median(local[script])} | "
        f"{statistics.median(remote[verb]) / statistics.median(local[script]):.1f}x |"
        for verb, script in pairs
    ]
    if remote["verify"]:
        rows.append(f"| `nsgen verify` | {median(remote['verify'])} | | |")
    return "\n".join([
        MARKER,
        "",
        f"{args.namespaces} namespaces on {HOSTS} emulated hosts ({args.namespaces // HOSTS} each), one bridge spanning all"
        f" three, a ring of {args.namespaces} cross-host VXLAN links; the change applied: a namespace added on each host."
        f" {args.repeats} repetitions, medians (range). ansible-core {ansible_version()}, ControlPersist 60 s and pipelining"
        f" on, forks 50; this machine: {os.cpu_count()} cores, kernel {platform.release()}; a fixed Python loop took"
        f" {median(loop)} (the machine's speed in this run).",
        "",
        "| what (from the controller) | time | the slowest host's own run | ratio |",
        "|---|---|---|---|",
        *rows,
        "",
        "`nsgen status` and `nsgen apply` each run ansible-playbook (apply twice: the hosts' state is read first), and",
        "render the lab in Python on the controller; a host's own run is its script alone. The emulated hosts share",
        "this machine's kernel and its 2 cores: real hosts each run their part on their own CPUs.",
        "",
    ])


def ansible_version() -> str:
    try:
        from ansible.release import __version__

        return __version__
    except ImportError:
        return "?"


if __name__ == "__main__":
    main()
