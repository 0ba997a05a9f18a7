"""Link conditions (rate, delay, jitter, loss): the plan's tc commands, their printing, and for real a
rate measured across a lab, and netem refused where the kernel lacks it."""

import json
import re
import subprocess
import sys
from pathlib import Path

import faults
import pytest
from conftest import leftovers, nsgen, run

from nsgen.plan import commands, lab_plans
from nsgen.render import lab_files, styles, writing
from nsgen.run import drift, recording
from nsgen.topology import yaml_file
from nsgen.topology.conditions import Conditions
from nsgen.validate import sources
from nsgen.validate.lab import build_lab

#: Two links: a and b at 10mbit one way and 50mbit the other, c and d unconditioned.
SHAPED = {
    "name": "shaped",
    "namespaces": {
        name: {"interfaces": {"e0": {"addresses": [address]}}}
        for name, address in (("a", "10.90.0.1/24"), ("b", "10.90.0.2/24"), ("c", "10.91.0.1/24"), ("d", "10.91.0.2/24"))
    },
    "links": [{"endpoints": ["a:e0", "b:e0"], "rate": "10mbit", "from": {"b": {"rate": "50mbit"}}}, ["c:e0", "d:e0"]],
}


@pytest.mark.parametrize(
    ("conditions", "words"),
    [
        (Conditions(rate="10mbit"), ("tbf", "rate", "10mbit", "burst", "16kb", "latency", "50ms")),
        (Conditions(rate="1gbit"), ("tbf", "rate", "1gbit", "burst", "1250kb", "latency", "50ms")),
        (Conditions(delay="20ms", jitter="2ms"), ("netem", "delay", "20ms", "2ms")),
        (Conditions(loss="0.5%"), ("netem", "loss", "0.5%")),
        (Conditions(rate="10mbit", delay="5ms", loss="1%"), ("netem", "delay", "5ms", "loss", "1%", "rate", "10mbit")),
    ],
)
def test_each_condition_is_the_qdisc_tc_takes(conditions: Conditions, words: tuple[str, ...]) -> None:
    assert commands.qdisc_words(conditions) == words


def test_the_plan_shapes_what_each_end_sends_and_every_style_prints_it() -> None:
    lab = build_lab(SHAPED, "t", prefix="p-")
    setup = lab_plans.setup(lab)
    shaped = [c for step in setup for c in step.commands if c.tool == "tc"]
    assert [(c.netns, " ".join(c.argv)) for c in shaped] == [
        ("p-a", "qdisc add dev e0 root tbf rate 10mbit burst 16kb latency 50ms"),
        ("p-b", "qdisc add dev e0 root tbf rate 50mbit burst 63kb latency 50ms"),
    ]
    tutorial = [w for block in styles.tutorial(lab, setup) for w in block.lines]
    assert ("tc", "-n", "p-a", "qdisc", "add", "dev", "e0", "root", "tbf", "rate", "10mbit", "burst", "16kb", "latency", "50ms") in tutorial
    batches = {b.netns: b for b in styles.batched(lab, setup)}
    assert batches["p-b"].commands == [("tc", "-n", "p-b", *shaped[1].argv)]
    assert batches["p-b"].comment.startswith("b: its links' conditions, then addresses")


def test_conditions_round_trip_through_the_normalised_topology() -> None:
    lab = build_lab(SHAPED, "t")
    again = build_lab(yaml_file.document(lab), "t")
    assert again.links[0].sends == (Conditions(rate="10mbit"), Conditions(rate="50mbit")) == lab.links[0].sends
    both = build_lab({**SHAPED, "links": [{"endpoints": ["a:e0", "b:e0"], "delay": "5ms"}, ["c:e0", "d:e0"]]}, "t")
    assert yaml_file.document(both)["links"][0] == {"endpoints": ["a:e0", "b:e0"], "delay": "5ms"}


def _lab(tmp_path: Path, document: dict, prefix: str) -> Path:
    lab_dir = tmp_path / document["name"]
    writing.write(lab_files.render(sources.from_document(document, "lab.yaml", "lab.yaml", prefix)), lab_dir)
    return lab_dir


#: The receiving end of a measured transfer: it reports the bytes it got and the seconds from the first to the last.
_RECEIVER = r"""
import socket, time
s = socket.socket(); s.bind(("0.0.0.0", 5201)); s.listen(1)
print("ready", flush=True)
c, _ = s.accept(); n, start = 0, None
while data := c.recv(1 << 16):
    start = start or time.monotonic(); n += len(data)
print(n, time.monotonic() - start, flush=True)
"""
_SENDER = "import socket, sys; s = socket.create_connection((sys.argv[1], 5201)); s.sendall(b'x' * int(sys.argv[2])); s.close()"


def _throughput(source: str, target: str, address: str, size: int) -> float:
    """Bits a second of one TCP transfer of `size` bytes from namespace `source` to `target` (Python alone)."""
    receiver = subprocess.Popen(["ip", "netns", "exec", target, sys.executable, "-c", _RECEIVER], stdout=subprocess.PIPE, text=True)
    try:
        assert receiver.stdout is not None and receiver.stdout.readline().strip() == "ready"
        run("ip", "netns", "exec", source, sys.executable, "-c", _SENDER, address, str(size), check=True)
        received, seconds = receiver.stdout.readline().split()
        assert int(received) == size
        return size * 8 / float(seconds)
    finally:
        receiver.kill()
        receiver.wait()


@pytest.mark.kernel
def test_a_rate_is_the_throughput_both_ways_and_an_unconditioned_link_is_far_faster(tmp_path: Path, prefix: str) -> None:
    lab_dir = _lab(tmp_path, SHAPED, prefix)
    try:
        setup = run("bash", lab_dir / "setup.sh")
        assert setup.returncode == 0, setup.stderr
        slow = _throughput(f"{prefix}a", f"{prefix}b", "10.90.0.2", 4_000_000)
        fast = _throughput(f"{prefix}b", f"{prefix}a", "10.90.0.1", 16_000_000)
        free = _throughput(f"{prefix}c", f"{prefix}d", "10.91.0.2", 200_000_000)
        assert 0.85 * 10e6 <= slow <= 1.15 * 10e6, slow
        assert 0.85 * 50e6 <= fast <= 1.15 * 50e6, fast
        assert free >= 10 * fast, (free, fast)
    finally:
        run("bash", lab_dir / "teardown.sh")
    assert leftovers(prefix) == set()


def _netem_here() -> bool:
    probe = subprocess.run(["unshare", "--net", "tc", "qdisc", "add", "dev", "lo", "root", "netem"], capture_output=True)
    return probe.returncode == 0


NETEM = {**SHAPED, "name": "delayed", "links": [{"endpoints": ["a:e0", "b:e0"], "delay": "50ms", "from": {"b": {"loss": "20%"}}}, ["c:e0", "d:e0"]]}


@pytest.mark.kernel
def test_netem_is_refused_where_the_kernel_lacks_it_and_force_goes_on_without(tmp_path: Path, prefix: str) -> None:
    if _netem_here():
        pytest.skip("this kernel has netem: its refusal cannot be seen here (the measurement test covers netem)")
    topology = tmp_path / "delayed.yaml"
    topology.write_text(yaml_file.dump(NETEM))
    lab = [topology, "--prefix", prefix]
    try:
        refused = nsgen("up", *lab)
        assert refused.returncode == 2 and leftovers(prefix) == set()
        assert refused.stderr == (
            "setup.sh: no netem qdisc in this kernel (sch_netem), needed by: a:e0 -- b:e0 (from a: delay 50ms); "
            "a:e0 -- b:e0 (from b: delay 50ms, loss 20%). Load it (modprobe sch_netem), or use --force to go on without them\n"
        )
        forced = nsgen("up", *lab, "--force")
        assert forced.returncode == 0 and "--force: no netem qdisc in this kernel" in forced.stderr
        verify = nsgen("verify", *lab)  # the lab answers; its conditions are not there, and it says so
        assert verify.returncode == 1 and "lab delayed: 4 passed, 0 failed (its checks)" in verify.stdout
        assert "FAIL  a: e0 qdisc netem: missing" in verify.stdout
    finally:
        nsgen("down", *lab)
    assert leftovers(prefix) == set()


@pytest.mark.kernel
def test_a_rate_changed_by_hand_is_planned_from_the_kernels_and_a_rollback_puts_it_back(tmp_path: Path, prefix: str) -> None:
    """The plan starts from the rate the kernel has (not from none), and its rollback restores that rate
    rather than deleting the qdisc; found by a review (a signal after the change left no qdisc at all)."""
    loaded = sources.from_document(SHAPED, "lab.yaml", "lab.yaml", prefix)
    lab_dir = _lab(tmp_path, SHAPED, prefix)
    topology = tmp_path / "shaped.yaml"
    topology.write_text(yaml_file.dump(SHAPED))
    try:
        assert run("bash", lab_dir / "setup.sh").returncode == 0
        tbf = ("tbf", "rate", "5mbit", "burst", "16kb", "latency", "50ms")
        run("tc", "-n", f"{prefix}a", "qdisc", "replace", "dev", "e0", "root", *tbf, check=True)
        assert [str(d) for d in drift.differences(loaded.lab)] == ["a: e0 rate 10mbit: different (5mbit)"]
        plan = nsgen("plan", topology, "--prefix", prefix, "-o", tmp_path / "change")
        assert "~ link a:e0 -- b:e0 from a: rate 5mbit -> rate 10mbit" in plan.stdout, plan.stdout
        env = faults.environment(tmp_path, 1, "kill -TERM $$")
        stopped = run("bash", tmp_path / "change" / "apply.sh", env=env)
        assert stopped.returncode == 143 and "rolled back" in stopped.stderr, stopped.stderr
        assert [str(d) for d in drift.differences(loaded.lab)] == ["a: e0 rate 10mbit: different (5mbit)"]
        assert run("bash", tmp_path / "change" / "apply.sh").returncode == 0
        assert [str(d) for d in drift.differences(loaded.lab)] == []
    finally:
        run("bash", lab_dir / "teardown.sh")
    assert leftovers(prefix) == set()


@pytest.mark.kernel
def test_a_missing_qdisc_stops_apply_and_force_goes_on_without_saying_so_and_status_names_it(
    tmp_path: Path, prefix: str
) -> None:
    """apply.sh's --force is setup.sh's: past a preflight that stops the change (here the qdisc the kernel
    lacks), said, and what the change could not give named after it and by status."""
    if _netem_here():
        pytest.skip("this kernel has netem: nothing is missing to stop apply")
    lab_dir = _lab(tmp_path, SHAPED, prefix)
    old = sources.from_document(SHAPED, "lab.yaml", "lab.yaml", prefix)
    new = sources.from_document({**NETEM, "name": "shaped"}, "lab.yaml", "lab.yaml", prefix)
    writing.write(lab_files.render_apply(old.lab, new), tmp_path / "change", (*lab_files.SCRIPTS, lab_files.APPLY))
    try:
        assert run("bash", lab_dir / "setup.sh").returncode == 0
        refused = run("bash", tmp_path / "change" / "apply.sh")
        assert refused.returncode == 2 and "no netem qdisc in this kernel" in refused.stderr, refused.stderr
        assert "or use --force to go on without them" in refused.stderr
        assert [str(d) for d in drift.differences(old.lab)] == []  # nothing changed, the record neither
        forced = run("bash", tmp_path / "change" / "apply.sh", "--force")
        assert forced.returncode == 0, forced.stderr
        assert "apply.sh: --force: no netem qdisc in this kernel (sch_netem), needed by: " in forced.stderr
        said = forced.stderr.splitlines()
        assert "apply.sh: after the change: a: e0 qdisc netem: different (tbf)" in said, forced.stderr  # tbf's kept
        assert "apply.sh: after the change: a: e0 delay 50ms: missing" in said
        assert "the change is made, and the lab still differs from the new topology there" in forced.stderr
        assert "a: e0 delay 50ms: missing" in [str(d) for d in drift.differences(new.lab)]
    finally:
        run("bash", lab_dir / "teardown.sh")
    assert leftovers(prefix) == set()


@pytest.mark.kernel
def test_delay_and_loss_are_what_ping_sees(tmp_path: Path, prefix: str) -> None:
    if not _netem_here():
        pytest.skip("no netem qdisc in this kernel (sch_netem): delay, jitter and loss cannot be measured here")
    lab_dir = _lab(tmp_path, NETEM, prefix)
    try:
        assert run("bash", lab_dir / "setup.sh").returncode == 0
        ping = run("ip", "netns", "exec", f"{prefix}a", "ping", "-q", "-c", "100", "-i", "0.01", "-W", "1", "10.90.0.2")
        summary = ping.stdout.splitlines()
        lost = int(next(line for line in summary if "packet loss" in line).split("%")[0].split()[-1])
        rtt = float(summary[-1].split("=")[1].split("/")[1])
        assert 10 <= lost <= 30 and 100 <= rtt <= 120, ping.stdout  # 50 ms each way
    finally:
        run("bash", lab_dir / "teardown.sh")
    assert leftovers(prefix) == set()



def _ifindex(netns: str, device: str) -> int:
    return int(json.loads(run("ip", "-n", netns, "-j", "link", "show", "dev", device, check=True).stdout)[0]["ifindex"])


@pytest.mark.kernel
def test_apply_changes_a_rate_in_place_and_a_rollback_restores_it(tmp_path: Path, prefix: str) -> None:
    """A rate changed by apply: the link keeps its ifindex, a ping stream on the other link loses
    nothing, the new rate is what a transfer measures; a signal during the change puts the old one back."""
    old = sources.from_document(SHAPED, "lab.yaml", "lab.yaml", prefix)
    faster = {**SHAPED, "links": [{"endpoints": ["a:e0", "b:e0"], "rate": "20mbit", "from": {"b": {"rate": "50mbit"}}}, ["c:e0", "d:e0"]]}
    new = sources.from_document(faster, "lab.yaml", "lab.yaml", prefix)
    lab_dir = _lab(tmp_path, SHAPED, prefix)
    change = tmp_path / "change"
    writing.write(lab_files.render_apply(old.lab, new), change, (*lab_files.SCRIPTS, lab_files.APPLY))
    try:
        assert run("bash", lab_dir / "setup.sh").returncode == 0
        before = _ifindex(f"{prefix}a", "e0")
        assert f"tc -n {prefix}a qdisc replace dev e0 root tbf rate 20mbit" in (change / "apply.sh").read_text()
        signalled = run("bash", change / "apply.sh", env=faults.environment(tmp_path, 1, "kill -TERM $$"))
        assert signalled.returncode == 143 and "rolled back" in signalled.stderr, signalled.stderr
        assert [str(d) for d in drift.differences(old.lab)] == []  # the old rate, exactly
        ping = subprocess.Popen(["ip", "netns", "exec", f"{prefix}c", "ping", "-q", "-i", "0.02", "-c", "100", "10.91.0.2"],
                                stdout=subprocess.PIPE, text=True)  # fmt: skip
        applied = run("bash", change / "apply.sh")
        out, _ = ping.communicate(timeout=30)
        assert applied.returncode == 0, applied.stderr
        assert " 0% packet loss" in out, out
        assert _ifindex(f"{prefix}a", "e0") == before
        assert [str(d) for d in drift.differences(new.lab)] == []
        rate = _throughput(f"{prefix}a", f"{prefix}b", "10.90.0.2", 8_000_000)
        assert 0.85 * 20e6 <= rate <= 1.15 * 20e6, rate
    finally:
        run("bash", lab_dir / "teardown.sh")
    assert leftovers(prefix) == set()


BRIDGED = {
    "name": "brshaped",
    "bridges": {"br0": {"addresses": ["10.92.0.1/24"]}},
    "namespaces": {n: {"interfaces": {"e0": {"addresses": [f"10.92.0.{i}/24"]}}} for i, n in ((2, "a"), (3, "b"))},
    "links": [{"endpoints": ["a:e0", "br0:pa"], "from": {"br0": {"rate": "10mbit"}}}, ["b:e0", "br0:pb"]],
}


@pytest.mark.kernel
def test_a_bridge_ports_condition_is_in_the_root_namespace_and_checked(tmp_path: Path, prefix: str) -> None:
    lab_dir = _lab(tmp_path, BRIDGED, prefix)
    lab = sources.from_document(BRIDGED, "lab.yaml", "lab.yaml", prefix).lab
    try:
        assert run("bash", lab_dir / "setup.sh", "--force").returncode == 0  # --force: a bridge lab where FORWARD may drop
        assert run("bash", lab_dir / "verify.sh").returncode == 0 and drift.differences(lab) == []
        run("tc", "qdisc", "del", "dev", f"{prefix}pa", "root", check=True)  # the lab's own port, in the root namespace
        assert [str(d) for d in drift.differences(lab)] == [
            f"host: {prefix}pa qdisc tbf: missing",
            f"host: {prefix}pa rate 10mbit: missing",
        ]
    finally:
        run("bash", lab_dir / "teardown.sh")
    assert leftovers(prefix) == set()


#: A link's rate changed live, recorded for the docs (docs/conditions/demo.sh -> docs/conditions.cast).
CONDITIONS_DEMO = Path(__file__).resolve().parent.parent / "docs" / "conditions"


@pytest.mark.kernel
def test_the_recording_shows_a_rate_changed_live(tmp_path: Path, prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Recorded as `nsgen record` records a demo: the 60 KB ping's round trip falls when apply doubles the rate."""
    cast = tmp_path / "conditions.cast"
    monkeypatch.setenv("NSGEN_DEMO_PREFIX", prefix)
    options = recording.CastOptions(cols=110, rows=30, title="a link's rate, changed live")
    assert recording.record(CONDITIONS_DEMO, cast, options) == 0
    text = "".join(json.loads(line)[2] for line in cast.read_text().splitlines()[1:] if line.startswith("["))
    rtts = [float(m) for m in re.findall(r"rtt min/avg/max/mdev = [\d.]+/([\d.]+)/", text)]
    assert len(rtts) == 2 and rtts[0] > 1.6 * rtts[1], rtts
    assert "plan: 2 change(s), 2 command(s)" in text and "~ link a:e0 -- b:e0 from a: rate 10mbit -> rate 20mbit" in text
    assert recording.cast_problem(CONDITIONS_DEMO.parent / "conditions.cast") is None  # the committed recording
    assert leftovers(prefix) == set()


#: Rates at the edges of what validation takes: the least, one tc shows in bits, one in a unit it
#: divides into, the fastest.
EDGE_RATES = ("8bit", "12344bit", "2500kbit", "100gbit")


@pytest.mark.kernel
def test_every_rate_validation_takes_is_set_and_read_back_as_declared(tmp_path: Path, prefix: str) -> None:
    names = [chr(ord("a") + index) for index in range(2 * len(EDGE_RATES))]
    document = {
        "name": "edges",
        "namespaces": {name: {"interfaces": {"e0": {"addresses": [f"10.{index // 2}.0.{index % 2 + 1}/24"]}}} for index, name in enumerate(names)},
        "links": [{"endpoints": [f"{a}:e0", f"{b}:e0"], "rate": rate} for a, b, rate in zip(names[::2], names[1::2], EDGE_RATES)],
    }
    lab_dir = _lab(tmp_path, document, prefix)
    lab = sources.from_document(document, "lab.yaml", "lab.yaml", prefix).lab
    try:
        result = run("bash", lab_dir / "setup.sh")
        assert result.returncode == 0, result.stderr
        assert drift.differences(lab) == []
        assert run("bash", lab_dir / "verify.sh").returncode == 0
        shown = run("ip", "netns", "exec", f"{prefix}a", "tc", "qdisc", "show", "dev", "e0").stdout
        assert " rate 8bit " in shown
    finally:
        run("bash", lab_dir / "teardown.sh")
    assert leftovers(prefix) == set()
