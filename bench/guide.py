"""What the sandbox costs the guide's recorded parts: a sandbox's start and end against a plain bash in the same
run, and each demo part's recording (III to V) with that share.

    python3 bench/guide.py [--repeats 5]

Times `bash -c true` (the baseline), the same in a new sandbox (nsgen.run.sandbox: unshare, its mounts, its
cgroups' removal), and `nsgen.run.guide_parts.record` of each demo part into a scratch directory. Prints medians
and ratios to the baseline. Needs root, and what `nsgen docs --guide` needs (jq; containerd, runc, busybox). Not a
test.
"""

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from nsgen.render import guide
from nsgen.run import guide_parts, sandbox


def timed(*command: str) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - start


def sandboxed(*command: str) -> float:
    with sandbox.sandbox() as wrapper:
        return timed(*wrapper, *command)


def recorded(part: guide.Part, where: Path) -> float:
    start = time.perf_counter()
    assert guide_parts.record(part, where, where / part.cast_name) == 0
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    repeats = parser.parse_args().repeats
    baseline = statistics.median(timed("bash", "-c", "true") for _ in range(repeats))
    boxed = statistics.median(sandboxed("bash", "-c", "true") for _ in range(repeats))
    print(f"{'':30} {'median':>8} {'ratio':>7}  the sandbox's share")
    print(f"{'bash -c true (the baseline)':30} {baseline:7.3f}s {1:6.1f}x")
    print(f"{'the same in a sandbox':30} {boxed:7.3f}s {boxed / baseline:6.1f}x")
    with tempfile.TemporaryDirectory(prefix="nsgen-bench-guide-") as scratch:
        for part in (p for p in guide.PARTS if p.preset is None):
            seconds = statistics.median(recorded(part, Path(scratch) / f"{part.directory}-{n}") for n in range(repeats))
            share = (boxed - baseline) / seconds
            print(f"{'recording ' + part.name:30} {seconds:7.3f}s {seconds / baseline:6.0f}x  {share:.1%}")


if __name__ == "__main__":
    main()
