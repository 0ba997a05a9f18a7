"""Reading a running lab back against setting it up: `nsgen status`, `nsgen check` and `nsgen verify`
of the bridge lab, each as a ratio to `nsgen up` of the same lab in the same run.

    python3 bench/read_back.py [--count 1000] [--repeats 3]

Each repetition: `nsgen up` (the baseline), then status, check and verify of the lab as it is (each
must say the lab is whole: exit 0, except verify where this machine's neighbour table overflows,
whose failed pings are counted and printed), then `nsgen down`. Prints medians, ratios to `up`,
and the neighbour table's limit (net.ipv4.neigh.default.gc_thresh3, one table for every
namespace). Its subnet is moved to 10.251.0.0/16, clear of other labs. Needs root. Not a test.
"""

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nsgen.topology import presets

PREFIX = "bi-"
COMMANDS = ("up", "status", "check", "verify", "down")


def run(command: str, topology: Path) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    argv = [sys.executable, "-m", "nsgen", command, str(topology), "--prefix", PREFIX]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    options = parser.parse_args()
    document = json.loads(json.dumps(presets.build("bridge", options.count)).replace("172.16.", "10.251."))
    topology = Path(tempfile.mkdtemp(prefix="nsgen-bench-read-back-")) / "bridge.yaml"
    topology.write_text(json.dumps(document))
    times: dict[str, list[float]] = {command: [] for command in COMMANDS}
    failed_pings = []
    try:
        for _ in range(options.repeats):
            for command in COMMANDS:
                seconds, result = run(command, topology)
                times[command].append(seconds)
                if command == "verify":
                    said = re.search(r"(\d+) passed, (\d+) failed", result.stdout)
                    failed_pings.append(int(said.group(2)) if said else -1)
                elif result.returncode != 0:
                    sys.exit(f"nsgen {command}: exit {result.returncode}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    finally:
        run("down", topology)
        shutil.rmtree(topology.parent, ignore_errors=True)
    limit = Path("/proc/sys/net/ipv4/neigh/default/gc_thresh3").read_text().strip()
    up = statistics.median(times["up"])
    print(f"bridge lab of {options.count} namespaces, {options.repeats} runs (median, min-max), ratio to up:")
    for command in COMMANDS:
        median = statistics.median(times[command])
        print(f"  {command:7} {median:7.2f} s ({min(times[command]):.2f}-{max(times[command]):.2f})  x{median / up:.2f}")
    print(f"verify's failed pings per run: {failed_pings} (neighbour table: gc_thresh3 {limit} entries, all namespaces)")


if __name__ == "__main__":
    main()
