"""20 concurrent ADDs: nsgen-bridge against the reference bridge plugin with host-local, in the same run.

    python3 bench/cni_adds.py [--count 20] [--repeats 5]

Each repetition, for each plugin in turn: a network namespace playing the host, COUNT container namespaces, COUNT
ADDs started at once (each `nsenter --net=HOST PLUGIN`, as a runtime runs it), timed from the first start to the
last exit; then the namespaces are deleted (their devices and rules go with them). Two configurations: podman's
default network (isGateway, ipMasq, hairpinMode: the reference with host-local, nsgen-bridge with its defaults) and
a gateway alone (no masquerade, no hairpin). Prints the medians, ranges and the ratio nsgen/reference. Needs root
and /usr/lib/cni (Debian's containernetworking-plugins). Not a test.
"""

import argparse
import concurrent.futures
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from nsgen.render import cni, writing

REFERENCE = Path("/usr/lib/cni")
SUBNET, GATEWAY, RANGE = "10.251.0.0/24", "10.251.0.1", ("10.251.0.10", "10.251.0.250")


def configs(name: str, masq: bool, store: Path) -> dict[str, dict]:
    """Each plugin's network config for one configuration: with masquerade and hairpin (podman's), or without."""
    modes = {"isGateway": True, "ipMasq": masq, "hairpinMode": masq}
    common = {"cniVersion": "1.0.0", "name": name, "bridge": "bench-br0", **modes}
    addresses = {"subnet": SUBNET, "gateway": GATEWAY, "rangeStart": RANGE[0], "rangeEnd": RANGE[1]}
    return {
        "nsgen-bridge": {**common, "type": "nsgen-bridge", **addresses},
        "reference": {**common, "type": "bridge", "ipam": {"type": "host-local", "dataDir": str(store), "ranges": [[addresses]]}},
    }


def run_adds(plugin: Path, config: dict, count: int, store: Path, tag: str) -> float:
    """COUNT concurrent ADDs in a fresh host namespace: the seconds from the first start to the last exit."""
    host = f"cnib-{os.getpid()}-{tag}"
    names = [f"{host}-{i}" for i in range(count)]
    for name in (host, *names):
        subprocess.run(["ip", "netns", "add", name], check=True)
    stdin = json.dumps(config)

    def add(name: str) -> subprocess.CompletedProcess:
        env = {"PATH": os.environ["PATH"], "CNI_COMMAND": "ADD", "CNI_CONTAINERID": f"{name}-id",
               "CNI_NETNS": f"/run/netns/{name}", "CNI_IFNAME": "eth0", "CNI_PATH": str(REFERENCE),
               "NSGEN_CNI_DATA_DIR": str(store)}
        return subprocess.run(["nsenter", f"--net=/run/netns/{host}", str(plugin)], input=stdin, env=env,
                              capture_output=True, text=True, check=False)

    try:
        with concurrent.futures.ThreadPoolExecutor(count) as pool:
            started = time.perf_counter()
            replies = list(pool.map(add, names))
            elapsed = time.perf_counter() - started
        failed = [reply.stdout + reply.stderr for reply in replies if reply.returncode != 0]
        if failed:
            raise SystemExit(f"{plugin.name}: {len(failed)} ADD(s) failed: {failed[0]}")
        return elapsed
    finally:
        for name in (*names, host):
            subprocess.run(["ip", "netns", "del", name], check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nsgen-cni-bench-") as temp:
        work = Path(temp)
        writing.write(cni.render_cni(cni.CniOptions()), work / "cni", cni.EXECUTABLES)
        plugins = {"nsgen-bridge": work / "cni" / "nsgen-bridge", "reference": REFERENCE / "bridge"}
        for label, masq in (("podman's default (gateway, masquerade, hairpin)", True), ("gateway alone", False)):
            times: dict[str, list[float]] = {name: [] for name in plugins}
            for repeat in range(args.repeats):
                tag = f"{repeat}{masq:d}"
                for name, config in configs("cnib", masq, work / tag).items():  # interleaved: the machine's speed varies
                    times[name].append(run_adds(plugins[name], config, args.count, work / tag, f"{name[:3]}{tag}"))
            medians = {name: statistics.median(values) for name, values in times.items()}
            print(f"{args.count} concurrent ADDs, {label}, median of {args.repeats}:")
            for name, values in times.items():
                print(f"  {name:<12} {medians[name]:.3f} s (range {min(values):.3f}-{max(values):.3f})")
            print(f"  ratio nsgen-bridge/reference: {medians['nsgen-bridge'] / medians['reference']:.1f}x")


if __name__ == "__main__":
    main()
