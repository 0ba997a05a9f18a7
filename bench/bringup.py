"""Bring-up of the bridge lab at N = 1000 against the kernel-only floor, and `nsgen render` at N = 5000,
each with a breakdown of where the time goes.

    python3 bench/bringup.py [--count 1000] [--repeats 5] [--render-count 5000] [--render-only] [--cached-bytecode]

Run it with the Python nsgen is installed into (the README's venv on Debian's Python 3.11.2, not a debug build).

In one run, interleaved (each repetition times every variant before the next repetition starts):
- floor: every namespace and veth pair of the lab made by one `ip -batch` (what the kernel needs at least);
- root part: nsgen's root-namespace commands alone, in one `ip -batch` (namespaces, bridge, veths, ports up);
- namespace part: then nsgen's per-namespace batches alone, through nsenter, as many at once as CPUs;
- setup.sh: the whole script (checks, lock, preflight, the same commands, rollback armed);
- teardown.sh, timed until the kernel has removed every root-namespace device.
Medians with ranges, and ratios to the floor. Before them (the kernel's workers are busy for a minute after a
bring-up), as whole processes, interleaved: `nsgen render` of the bridge preset of `--count` namespaces and of a
5000-namespace lab (five bridges of 1000: a Linux bridge takes at most 1023 ports), each into a temp dir, beside a
fixed loop, `python -c 'sum(range(10**7))'` of the same Python (how fast the machine runs Python in this run: renders
are given as ratios to it), and the render of 5000's phases in one process. `--render-only`: that part alone (no
root needed); `--cached-bytecode`: nsgen's bytecode kept between runs (in a temp dir), as pip installs it, where
PYTHONDONTWRITEBYTECODE would have it compiled in every run. Needs root and iproute2 for the rest. Not a test: CI
does not run it, and nothing in it asserts a time.
"""

import argparse
import gc
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from nsgen.plan import lab_plans, reachability
from nsgen.render import lab_files, styles, writing
from nsgen.topology import yaml_file
from nsgen.validate import sources

PREFIX = "bu-"


def _run(*argv: str, stdin: str | None = None, env: dict[str, str] | None = None) -> None:
    subprocess.run(argv, input=stdin, text=True, check=True, stdout=subprocess.DEVNULL, env=env)


def _gone(prefix: str) -> None:
    """Wait until no root-namespace device or namespace of `prefix` is left."""
    while any(n.startswith(prefix) for n in os.listdir("/sys/class/net")) or any(
        n.startswith(prefix) for n in (os.listdir("/run/netns") if os.path.isdir("/run/netns") else ())
    ):
        time.sleep(0.02)


def _delete(lab_dir: Path) -> None:
    _run("bash", str(lab_dir / "teardown.sh"))
    _gone(PREFIX)


def floor_batch(count: int) -> str:
    lines = [f"netns add {PREFIX}f{i}" for i in range(count)]
    lines += [f"link add name {PREFIX}v{i} type veth peer name eth0 netns {PREFIX}f{i}" for i in range(count)]
    return "\n".join(lines) + "\n"


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def bring_up(count: int, repeats: int) -> dict[str, list[float]]:
    loaded = sources.load(preset="bridge", count=count, prefix=PREFIX)
    lab = loaded.lab
    batches = styles.batched(lab, lab_plans.setup(lab))
    root = "\n".join(line for b in batches if b.netns is None for line in b.lines) + "\n"
    inside = [(b.netns, "\n".join(b.lines) + "\n") for b in batches if b.netns is not None]
    work = Path(tempfile.mkdtemp(prefix="nsgen-bench-"))
    lab_dir = work / "lab"
    writing.write(lab_files.render(loaded), lab_dir)
    cpus = os.cpu_count() or 2
    times: dict[str, list[float]] = {"floor": [], "root part": [], "namespace part": [], "setup.sh": [], "teardown.sh": []}
    for _ in range(repeats):
        times["floor"].append(timed(lambda: _run("ip", "-batch", "-", stdin=floor_batch(count))))
        _run("ip", "-force", "-batch", "-", stdin="".join(f"netns del {PREFIX}f{i}\n" for i in range(count)))
        _gone(PREFIX)
        times["root part"].append(timed(lambda: _run("ip", "-batch", "-", stdin=root)))

        def namespaces() -> None:
            with ThreadPoolExecutor(cpus) as pool:
                jobs = [pool.submit(_run, "nsenter", f"--net=/run/netns/{ns}", "ip", "-batch", "-", stdin=text)
                        for ns, text in inside]  # fmt: skip
                for job in jobs:
                    job.result()

        times["namespace part"].append(timed(namespaces))
        _delete(lab_dir)
        # --force: a route another lab on the machine may have in 172.16/16 does not matter to a timing
        times["setup.sh"].append(timed(lambda: _run("bash", str(lab_dir / "setup.sh"), "--force")))
        times["teardown.sh"].append(timed(lambda: _delete(lab_dir)))
    return times


def big_topology(count: int, per_bridge: int = 1000) -> dict:
    """`count` namespaces on bridges of `per_bridge` ports, each bridge its namespaces' gateway."""
    document: dict = {"name": "big", "bridges": {}, "namespaces": {}, "links": []}
    for b in range(-(-count // per_bridge)):
        document["bridges"][f"br{b}"] = {"addresses": [f"10.{b}.0.1/16"], "subnet": f"10.{b}.0.0/16"}
    for i in range(count):
        document["namespaces"][f"ns-{i}"] = {"routes": [{"to": "default", "via": f"10.{i // per_bridge}.0.1"}]}
        document["links"].append([f"ns-{i}:eth0", f"br{i // per_bridge}:p{i}"])
    return document


def render_phases(path: Path) -> dict[str, float]:
    """Where `nsgen render` spends its time, in one process (imports excluded: measured apart), with
    the cyclic garbage collector paused as the CLI pauses it."""
    phases = {}
    gc.disable()
    try:
        start = time.perf_counter()
        document = yaml_file.read(path)
        phases["read YAML"] = time.perf_counter() - start
        start = time.perf_counter()
        loaded = sources.from_document(document, path.name, path.name)
        phases["validate (the schema compiled, checked, then the named phases)"] = time.perf_counter() - start
        start = time.perf_counter()
        lab_files.record_text(loaded.lab)
        phases["the normalised record (topology.yaml, and its sha256 in every header)"] = time.perf_counter() - start
        start = time.perf_counter()
        checks = reachability.checks(loaded.lab)
        lab_plans.setup(loaded.lab), lab_plans.teardown(loaded.lab), lab_plans.verify(loaded.lab, checks)
        phases["reachability checks and plans"] = time.perf_counter() - start
        start = time.perf_counter()
        files = lab_files.render(loaded)
        whole = time.perf_counter() - start
        phases["files: styles and templates, in two processes"] = whole - sum(list(phases.values())[2:])
        start = time.perf_counter()
        writing.write(files, Path(tempfile.mkdtemp(prefix="nsgen-bench-")) / "out")
        phases["write"] = time.perf_counter() - start
    finally:
        gc.enable()
    return phases


#: The fixed work every render is measured against: this Python's loop, as a whole process. The machine's
#: speed varies by up to 3x hour to hour (a shared host), so renders are given as ratios to it, timed in the
#: same run, interleaved.
LOOP = "sum(range(10**7))"


def render_runs(
    path: Path, count: int, big: int, repeats: int, cached_bytecode: bool
) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Whole-process times, interleaved and in a rotating order: `nsgen render` of the bridge preset of
    `count` namespaces and of the lab at `path` (`big` namespaces), each into a temp dir; the fixed loop;
    and the imports alone. nsgen keeps compiled code in a cache of its own (here an empty temp dir, as
    XDG_CACHE_HOME): each command runs once first, untimed in the table, its time given apart. With
    `cached_bytecode`, Python keeps nsgen's bytecode (in a temp dir: PYTHONPYCACHEPREFIX), as an
    installed nsgen has it; else as this environment says (PYTHONDONTWRITEBYTECODE)."""
    work = Path(tempfile.mkdtemp(prefix="nsgen-bench-"))
    env = {**os.environ, "XDG_CACHE_HOME": str(work / "cache")}
    if cached_bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    nsgen = (sys.executable, "-m", "nsgen", "render")
    commands = {
        f"`nsgen render --preset bridge -n {count}`": (*nsgen, "--preset", "bridge", "-n", str(count), "-o", str(work / "bridge")),
        f"`nsgen render` of {big} namespaces (five bridges of 1000)": (*nsgen, str(path), "-o", str(work / "big")),
        f"the fixed loop (`python -c '{LOOP}'`)": (sys.executable, "-c", LOOP),
        "starting Python and importing nsgen.cli.app": (sys.executable, "-c", "import nsgen.cli.app"),
    }
    first = {name: timed(lambda argv=argv: _run(*argv, env=env)) for name, argv in commands.items()}
    times: dict[str, list[float]] = {name: [] for name in commands}
    names = list(commands)
    for repeat in range(repeats):
        for name in names[repeat % len(names):] + names[: repeat % len(names)]:
            times[name].append(timed(lambda argv=commands[name]: _run(*argv, env=env)))
    return times, first


def print_render_runs(times: dict[str, list[float]], first: dict[str, float], repeats: int, cached_bytecode: bool) -> None:
    """The table of `render_runs`: medians (ranges), and each median's ratio to the loop's."""
    loop = statistics.median(next(values for name, values in times.items() if name.startswith("the fixed loop")))
    if cached_bytecode:
        bytecode = "kept (PYTHONPYCACHEPREFIX, a temp dir), as an installed nsgen has it"
    elif os.environ.get("PYTHONDONTWRITEBYTECODE"):
        bytecode = "not kept (PYTHONDONTWRITEBYTECODE): compiled in every run"
    else:
        bytecode = "as Python keeps it"
    print(f"## nsgen render, whole processes: medians of {repeats} (range), interleaved; ratio to the fixed loop\n")
    print(f"Python: {sys.executable} {platform.python_version()}; nsgen's bytecode: {bytecode}; "
          f"load average {os.getloadavg()[0]:.2f}\n")
    print("| what | time | × loop | first run (nsgen's cache empty) |\n|---|---|---|---|")
    for name, values in times.items():
        print(f"| {name} | {_median(values, 3)} | ×{statistics.median(values) / loop:.1f} | {first[name]:.3f} s |")
    print()


def _median(values: list[float], digits: int = 2) -> str:
    return f"{statistics.median(values):.{digits}f} s ({min(values):.{digits}f}–{max(values):.{digits}f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--render-count", type=int, default=5000)
    parser.add_argument("--render-only", action="store_true", help="time render only (no root needed): no bring-up")
    parser.add_argument(
        "--cached-bytecode", action="store_true", help="keep nsgen's bytecode between runs, as an installed nsgen has it"
    )
    args = parser.parse_args()
    scratch = tempfile.mkdtemp(prefix="nsgen-bench-")
    tempfile.tempdir = scratch  # every temp dir of this run under it, removed at the end
    try:
        _measure(args)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _measure(args: argparse.Namespace) -> None:
    # render first: after a bring-up the kernel's workers spend a minute freeing namespaces, on the same CPUs
    path = Path(tempfile.mkdtemp(prefix="nsgen-bench-")) / "big.yaml"
    path.write_text(yaml_file.dump(big_topology(args.render_count)))
    runs = render_runs(path, args.count, args.render_count, args.repeats, args.cached_bytecode)
    print_render_runs(*runs, args.repeats, args.cached_bytecode)
    print(f"| phase of the render of {args.render_count} (one process) | time |\n|---|---|")
    for name, value in render_phases(path).items():
        print(f"| {name} | {value:.2f} s |")
    if args.render_only:
        print(f"\nmachine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the end")
        return
    times = bring_up(args.count, args.repeats)
    Path(f"/run/nsgen-{PREFIX}bridge.lock").unlink(missing_ok=True)  # setup's lock (the lab is gone: checked)
    floor = statistics.median(times["floor"])
    print(f"\n## bridge lab, N = {args.count}: medians of {args.repeats}, ratio to the kernel-only floor\n")
    print("| what | time | × floor |\n|---|---|---|")
    for name, values in times.items():
        print(f"| {name} | {_median(values)} | ×{statistics.median(values) / floor:.1f} |")
    iproute2 = " ".join(subprocess.run(["ip", "-V"], capture_output=True, text=True).stdout.split())
    print(f"\nmachine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the end; {iproute2}")


if __name__ == "__main__":
    main()
