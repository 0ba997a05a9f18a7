"""A change to a running bridge lab through apply.sh versus a rebuild: one namespace added, one
link's rate changed.

    python3 bench/apply.py [--count 1000] [--repeats 3]

Sets up the bridge lab of COUNT namespaces (its subnet moved to 10.250.0.0/16, clear of other labs;
the link of ns-5 at 10mbit), then, each repetition: times apply.sh adding namespace COUNT (and
`nsgen apply` end to end, render included), times apply.sh removing it again, times apply.sh
changing ns-5's rate to 20mbit and back, and times a rebuild (teardown.sh, then setup.sh of the lab
with one more namespace, and back). Prints medians and ratios to the rebuild; also checks that a
ping at 20 ms intervals between two untouched namespaces loses nothing across each kind of apply.
Needs root. Not a test.
"""

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nsgen.render import lab_files, writing
from nsgen.topology import presets
from nsgen.validate import sources

PREFIX = "ab-"


def lab(count: int, rate: str = "10mbit") -> sources.LoadedLab:
    document = json.loads(json.dumps(presets.build("bridge", count)).replace("172.16.", "10.250."))
    document["links"][5] = {"endpoints": document["links"][5], "rate": rate}
    return sources.from_document(document, "bench", f"preset 'bridge' --count {count}", PREFIX)


def timed(*command: str | Path, cwd: Path | None = None) -> float:
    start = time.perf_counter()
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True, cwd=cwd, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{command}: {result.returncode}\n{result.stdout}\n{result.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    options = parser.parse_args()
    small, big, faster = lab(options.count), lab(options.count + 1), lab(options.count, "20mbit")
    work = Path(tempfile.mkdtemp(prefix="nsgen-bench-apply-"))
    for name, loaded in (("small", small), ("big", big)):
        writing.write(lab_files.render(loaded), work / name)
    writing.write(lab_files.render_apply(small.lab, big), work / "add")
    writing.write(lab_files.render_apply(big.lab, small), work / "remove")
    writing.write(lab_files.render_apply(small.lab, faster), work / "rate")
    writing.write(lab_files.render_apply(faster.lab, small), work / "rate-back")
    (work / "big.yaml").write_text(lab_files.record_text(big.lab))
    times: dict[str, list[float]] = {"apply.sh: add one namespace": [], "apply.sh: remove it": [],
                                     "apply.sh: one link's rate 10mbit -> 20mbit": [], "apply.sh: and back": [],
                                     "nsgen apply (render + run): add one namespace": [],
                                     "rebuild: teardown + setup with one more": []}
    timed("bash", work / "small" / "setup.sh")
    try:
        for _ in range(options.repeats):
            times["apply.sh: add one namespace"].append(timed("bash", work / "add" / "apply.sh"))
            times["apply.sh: remove it"].append(timed("bash", work / "remove" / "apply.sh"))
            times["apply.sh: one link's rate 10mbit -> 20mbit"].append(timed("bash", work / "rate" / "apply.sh"))
            times["apply.sh: and back"].append(timed("bash", work / "rate-back" / "apply.sh"))
            times["nsgen apply (render + run): add one namespace"].append(
                timed(sys.executable, "-m", "nsgen", "apply", work / "big.yaml", cwd=Path(__file__).resolve().parent.parent))
            timed("bash", work / "remove" / "apply.sh")
            rebuild = timed("bash", work / "small" / "teardown.sh") + timed("bash", work / "big" / "setup.sh")
            times["rebuild: teardown + setup with one more"].append(rebuild)
            timed("bash", work / "big" / "teardown.sh")
            timed("bash", work / "small" / "setup.sh")
        # zero loss: ns-0 pings ns-1 every 20 ms while one namespace is added and removed
        ping = subprocess.Popen(["ip", "netns", "exec", f"{PREFIX}ns-0", "ping", "-q", "-i", "0.02", "-c", "150", "10.250.0.3"],
                                stdout=subprocess.PIPE, text=True)
        time.sleep(1)
        timed("bash", work / "add" / "apply.sh")
        timed("bash", work / "remove" / "apply.sh")
        timed("bash", work / "rate" / "apply.sh")
        timed("bash", work / "rate-back" / "apply.sh")
        out, _ = ping.communicate()
        loss = re.search(r"\d+ packets transmitted, \d+ received, [\d.]+% packet loss", out)
    finally:
        timed("bash", work / "small" / "teardown.sh")
    print(f"bridge lab, {options.count} namespaces; medians of {options.repeats} (range)")
    rebuild = statistics.median(times["rebuild: teardown + setup with one more"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.3f} s ({min(values):.3f}–{max(values):.3f}) | ×{median / rebuild:.3f} of a rebuild |")
    print(f"ping ns-0 -> ns-1 every 20 ms across an add, a remove and two rate changes: {loss.group(0) if loss else out}")


if __name__ == "__main__":
    main()
