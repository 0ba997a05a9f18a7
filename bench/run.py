"""Bring-up and teardown of the bridge lab at several sizes: nsgen (batched and tutorial styles),
the guide's one `ip netns exec NS ip …` per command, and Mininet 2.3 (Linux bridge, no controller).

    python3 bench/run.py [--sizes 10,100,500,1000] [--repeats 3] [--render-sizes 1000] [-o bench/RESULTS.md]

Runs are interleaved (every tool at one size and repetition before the next repetition), each
teardown is timed until the kernel has removed every root-namespace device of the lab, and each
result is a median of the repetitions with its range and its ratio to nsgen's default style.
Also: the whole-process time and peak memory of `nsgen render` for large labs. Needs root,
iproute2, and Debian's `mininet` and `bridge-utils` for the Mininet column. Not a test.
"""

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nsgen.render import lab_files, writing
from nsgen.validate import sources

BENCH = Path(__file__).resolve().parent
TOOLS = ("nsgen", "nsgen tutorial", "guide", "mininet")
PREFIX = {"nsgen": "nb-", "nsgen tutorial": "nt-", "guide": "gb-"}


def guide_scripts(count: int, prefix: str) -> tuple[str, str]:
    """The bridge lab as the guide builds it: in the root namespace, then moved; `ip netns exec` per command."""
    bridge = f"{prefix}v-net-0"
    up = ["set -e", f"ip link add {bridge} type bridge", f"ip link set dev {bridge} up",
          f"ip addr add 172.16.0.1/16 dev {bridge}"]
    down = []
    for i in range(count):
        ns, veth, port, address = f"{prefix}ns-{i}", f"{prefix}veth-{i}", f"{prefix}veth-{i}-br", f"172.16.{(i + 2) // 256}.{(i + 2) % 256}"
        up += [
            f"ip netns add {ns}",
            f"ip link add {veth} type veth peer name {port}",
            f"ip link set {veth} netns {ns}",
            f"ip link set {port} master {bridge}",
            f"ip netns exec {ns} ip addr add {address}/16 dev {veth}",
            f"ip netns exec {ns} ip link set {veth} up",
            f"ip link set {port} up",
            f"ip netns exec {ns} ip route add default via 172.16.0.1",
        ]
        down.append(f"ip netns del {ns}")
    down.append(f"ip link del {bridge}")
    return "\n".join(up) + "\n", "\n".join(down) + "\n"


def _root_devices(prefix: str) -> list[str]:
    return [name for name in os.listdir("/sys/class/net") if name.startswith(prefix)]


def _netns(prefix: str) -> list[str]:
    return [name for name in os.listdir("/run/netns") if name.startswith(prefix)] if os.path.isdir("/run/netns") else []


def _timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def _until_gone(prefix: str, started: float) -> float:
    while _root_devices(prefix) or _netns(prefix):
        time.sleep(0.01)
    return time.perf_counter() - started


class Lab:
    """One tool's bridge lab of one size, ready to be brought up and torn down."""

    def __init__(self, tool: str, count: int, work: Path):
        self.tool, self.count = tool, count
        self.dir = work / f"{tool.replace(' ', '-')}-{count}"
        if tool.startswith("nsgen"):
            loaded = sources.load(preset="bridge", count=count, prefix=PREFIX[tool])
            writing.write(lab_files.render(loaded, "tutorial" if tool.endswith("tutorial") else "batched"), self.dir)
        elif tool == "guide":
            self.dir.mkdir(parents=True)
            up, down = guide_scripts(count, PREFIX[tool])
            (self.dir / "setup.sh").write_text(up)
            (self.dir / "teardown.sh").write_text(down)

    def cycle(self) -> tuple[float, float]:
        """Bring the lab up, tear it down: (bring-up seconds, teardown seconds until the kernel is clean)."""
        if self.tool == "mininet":
            out = subprocess.run(["/usr/bin/python3", str(BENCH / "mininet_bridge.py"), str(self.count)],
                                 check=True, capture_output=True, text=True).stdout
            result = json.loads(out.strip().splitlines()[-1])
            return result["up"], result["down"]
        up = _timed(["bash", str(self.dir / "setup.sh")])
        started = time.perf_counter()
        subprocess.run(["bash", str(self.dir / "teardown.sh")], check=True, stdout=subprocess.DEVNULL)
        return up, _until_gone(PREFIX[self.tool], started)


def render_cost(count: int, repeats: int, work: Path) -> tuple[float, int]:
    """Median whole-process seconds and peak RSS (KiB) of `nsgen render` for the bridge lab of `count`."""
    times, peak = [], 0
    for index in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        out = work / f"render-{count}-{index}"
        times.append(_timed([sys.executable, "-m", "nsgen", "render", "--preset", "bridge", "-n", str(count), "-o", str(out)]))
        peak = max(peak, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before)
    return statistics.median(times), peak


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    memory = next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
    iproute = subprocess.run(["ip", "-V"], capture_output=True, text=True).stdout.strip()
    return (f"{os.cpu_count()} cores ({cpu}), {int(memory) // 1024 // 1024} GiB, Linux {platform.release()}, "
            f"{iproute}, Python {platform.python_version()}")


def _summary(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} s ({min(values):.2f}–{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,100,500,1000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--render-sizes", default="1000")  # a bridge takes at most 1023 ports: bench/bringup.py renders 5000
    parser.add_argument("--tools", default=",".join(TOOLS))
    parser.add_argument("-o", "--output", type=Path, default=BENCH / "RESULTS.md")
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",")]
    tools = [t for t in TOOLS if t in args.tools.split(",")]
    results: dict[tuple[str, int], list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="nsgen-bench-") as scratch:
        work = Path(scratch)
        for count in sizes:
            labs = [Lab(tool, count, work) for tool in tools]
            for repeat in range(args.repeats):
                for lab in labs[repeat % len(labs):] + labs[: repeat % len(labs)]:  # rotate the order
                    results.setdefault((lab.tool, count), []).append(lab.cycle())
                    print(f"N={count} #{repeat + 1} {lab.tool}: up {results[(lab.tool, count)][-1][0]:.2f} s, "
                          f"down {results[(lab.tool, count)][-1][1]:.2f} s", flush=True)
        renders = {n: render_cost(n, args.repeats, work) for n in (int(v) for v in args.render_sizes.split(","))}
    for prefix in PREFIX.values():  # setup's locks (the namespaces and devices are gone: checked per run)
        Path(f"/run/nsgen-{prefix}bridge.lock").unlink(missing_ok=True)

    lines = ["# Benchmark: the bridge lab, N namespaces", "", f"Machine: {machine()}.", "",
             f"`python3 bench/run.py --sizes {args.sizes} --repeats {args.repeats}`: medians of {args.repeats}, "
             "range in brackets, ratio = that tool's time / nsgen's (default, batched) time. Teardown is timed "
             "until the kernel has removed every root-namespace device.", ""]
    for phase, index in (("bring-up", 0), ("teardown", 1)):
        lines += [f"## {phase}", "", "| N | " + " | ".join(tools) + " |", "|---" * (len(tools) + 1) + "|"]
        for count in sizes:
            base = statistics.median(r[index] for r in results[("nsgen", count)]) if "nsgen" in tools else None
            cells = []
            for tool in tools:
                values = [r[index] for r in results[(tool, count)]]
                ratio = f" ×{statistics.median(values) / base:.1f}" if base and tool != "nsgen" else ""
                cells.append(_summary(values) + ratio)
            lines.append(f"| {count} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["## nsgen render (whole process)", "", "| N | time | peak memory |", "|---|---|---|"]
    lines += [f"| {n} | {t:.2f} s | {peak // 1024} MiB |" for n, (t, peak) in renders.items()]
    text = "\n".join(lines) + "\n"
    args.output.write_text(text + _others(args.output))
    print(text)


#: Where this benchmark's part of RESULTS.md ends: the other benchmarks' sections follow, kept as they are.
OTHERS = "## apply vs rebuild"


def _others(results: Path) -> str:
    """The other benchmarks' sections of `results` (bench/apply.py, multihost.py, bringup.py), to keep."""
    text = results.read_text() if results.exists() else ""
    return "\n" + text[text.index(OTHERS):] if OTHERS in text else ""


if __name__ == "__main__":
    main()
