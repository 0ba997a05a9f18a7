"""plan and apply on a running lab, for real: each kind of change both ways gives the kernel state of
a fresh setup; a failed step or a signal rolls back to exactly the old lab; untouched traffic flows."""

import json
import re
import subprocess
import time
import uuid
from pathlib import Path

import faults
import pytest
from conftest import leftovers, netns_names, nsgen, run, shellcheck
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from live_labs import BASE, VARIANTS, apply, ifindexes, load, record, setup, state, teardown, variant

from nsgen.plan import change_plan
from nsgen.render import lab_files, writing
from nsgen.validate import sources


def test_apply_sh_passes_shellcheck_and_quotes_what_it_records(tmp_path: Path) -> None:
    doc = variant(VARIANTS["add-namespace"])
    doc["description"] = "it's $(reboot) `now`; rm -rf /"
    old, new = load(BASE, "q.x-"), load(doc, "q.x-")
    files = lab_files.render_apply(old.lab, new)
    writing.write(files, tmp_path / "lab")
    result = shellcheck(tmp_path / "lab" / "apply.sh", options=["--severity=style"])
    assert result.returncode == 0, result.stdout
    assert "\n#   + namespace ns-3\n" in files["apply.sh"]


def test_plan_selects_the_lab_like_up_and_down(tmp_path: Path) -> None:
    (tmp_path / "old.yaml").write_text(lab_files.record_text(load(BASE, "").lab))
    refused = nsgen("plan", "--preset", "bridge", "--count", "3", "--prefix", "p-", "--from", tmp_path / "old.yaml")
    assert refused.returncode == 2 and "a plan changes a lab, not its name" in refused.stderr
    (tmp_path / "three.yaml").write_text(lab_files.record_text(sources.load(preset="bridge", count=3, prefix="p-").lab))
    shown = nsgen("plan", "--preset", "bridge", "-n", "4", "--prefix", "p-", "--from", tmp_path / "three.yaml")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("+ namespace ns-3\n+ link ns-3:eth0 -- v-net-0:veth-3\n"), shown.stdout
    assert nsgen("runtime", "apply.sh").stdout.startswith("# === nsgen runtime: sha256 ")


@pytest.mark.kernel
@pytest.mark.parametrize("kind", VARIANTS)
def test_each_change_both_ways_matches_a_fresh_setup(tmp_path: Path, prefix: str, kind: str) -> None:
    old, new = load(BASE, prefix), load(variant(VARIANTS[kind]), prefix)
    assert change_plan.diff(old.lab, new.lab).plan, "the variant changes something"
    setup(old, tmp_path / "a")
    before = state(old)
    assert before["drift"] == []
    forward = apply(old, new, tmp_path / "ab")
    assert forward.returncode == 0, forward.stderr
    assert record(new) == lab_files.record_text(new.lab)
    after = state(new)
    back = apply(new, old, tmp_path / "ba")
    assert back.returncode == 0, back.stderr
    assert state(old) == before  # B -> A is A
    assert record(old) == lab_files.record_text(old.lab)
    teardown(tmp_path / "a")
    assert record(old) is None
    setup(new, tmp_path / "b")
    try:
        assert state(new) == after  # A -> B is a fresh B
    finally:
        teardown(tmp_path / "b")
    assert leftovers(prefix) == set()


@pytest.mark.kernel
def test_no_change_is_an_empty_plan(tmp_path: Path, prefix: str) -> None:
    lab = load(BASE, prefix)
    setup(lab, tmp_path / "a")
    try:
        (tmp_path / "same.yaml").write_text(lab_files.record_text(lab.lab))
        shown = nsgen("plan", tmp_path / "same.yaml")
        assert shown.returncode == 0 and shown.stdout.strip() == "plan: no change", shown.stdout
        applied = nsgen("apply", tmp_path / "same.yaml")
        assert applied.returncode == 0 and "no change" in applied.stdout
    finally:
        teardown(tmp_path / "a")


@pytest.mark.kernel
def test_plan_and_apply_from_the_record_with_the_cli(tmp_path: Path, prefix: str) -> None:
    old, new = load(BASE, prefix), load(variant(VARIANTS["add-namespace"]), prefix)
    (tmp_path / "new.yaml").write_text(lab_files.record_text(new.lab))
    missing = nsgen("plan", tmp_path / "new.yaml")
    assert missing.returncode == 2 and "no record of lab 'live'" in missing.stderr
    setup(old, tmp_path / "a")
    try:
        shown = nsgen("plan", tmp_path / "new.yaml", "-o", tmp_path / "out")
        assert shown.returncode == 0, shown.stderr
        assert "+ namespace ns-3\n+ link ns-3:eth0 -- br0:p3\n" in shown.stdout
        assert (tmp_path / "out" / "apply.sh").exists() and (tmp_path / "out" / "setup.sh").exists()
        dry = run("bash", tmp_path / "out" / "apply.sh", "--dry-run")
        assert dry.returncode == 0 and f"ip netns add {prefix}ns-3" in dry.stdout
        assert f"{prefix}ns-3" not in netns_names()
        applied = nsgen("apply", tmp_path / "new.yaml")
        assert applied.returncode == 0, applied.stderr
        assert nsgen("status", tmp_path / "new.yaml").returncode == 0
        assert nsgen("plan", tmp_path / "new.yaml").stdout.strip() == "plan: no change"
        back = nsgen("apply", "--from", tmp_path / "new.yaml", tmp_path / "a" / "topology.yaml")
        assert back.returncode == 0 and "- namespace ns-3" in back.stdout, back.stderr
        assert nsgen("apply", tmp_path / "new.yaml").returncode == 0
        down = nsgen("down", tmp_path / "a" / "topology.yaml")  # the old file: the record knows better
        assert down.returncode == 0 and "as the record" in down.stderr, down.stderr
        assert leftovers(prefix) == set()
    finally:
        teardown(tmp_path / "a")
    assert leftovers(prefix) == set() and record(old) is None


@pytest.mark.kernel
def test_preflight_stops_on_drift_and_force_overrides(tmp_path: Path, prefix: str) -> None:
    old, new = load(BASE, prefix), load(variant(VARIANTS["add-route"]), prefix)
    setup(old, tmp_path / "a")
    try:
        run("ip", "-n", f"{prefix}ns-1", "route", "del", "default", check=True)
        refused = apply(old, new, tmp_path / "ab")
        assert refused.returncode == 2
        assert "apply.sh: drift: ns-1: route default via 10.231.0.1: missing\n" in refused.stderr
        assert "nothing was changed" in refused.stderr and record(old) == lab_files.record_text(old.lab)
        Path(f"/run/nsgen/{prefix}live.yaml").write_text("stale\n")
        stale = run("bash", tmp_path / "ab" / "apply.sh")
        assert stale.returncode == 2 and "records another topology" in stale.stderr
        forced = run("bash", tmp_path / "ab" / "apply.sh", "--force")
        assert forced.returncode == 0, forced.stderr
        assert forced.stderr.endswith(
            "apply.sh: after the change: ns-1: route default via 10.231.0.1: missing\n"
            "apply.sh: --force: the change is made, and the lab still differs from the new topology there (nsgen status)\n"
        )  # said, not hidden: --force started from the drift
        assert record(new) == lab_files.record_text(new.lab)
    finally:
        teardown(tmp_path / "a")


def _apply_steps(old, new) -> int:
    return sum(len(step.commands) for step in change_plan.diff(old.lab, new.lab).plan)


#: A change that touches every kind of object at once, for the failure tests.
def _big(doc: dict) -> None:
    for kind in ("add-namespace", "remove-namespace", "move-address", "mtu", "sysctl", "add-bridge", "rename-port", "mac"):
        if kind == "add-bridge":
            doc["bridges"]["br1"] = {"addresses": ["10.234.0.1/24"]}
            doc["namespaces"]["ns-1"]["interfaces"]["eth2"] = {"addresses": ["10.234.0.2/24"]}
            doc["links"].append(["ns-1:eth2", "br1:q0"])
        elif kind == "mtu":
            doc["bridges"]["br0"]["mtu"] = 1400
        else:
            VARIANTS[kind](doc)


def test_every_deletion_says_what_it_removes_and_the_root_devices_touched_come_from_that() -> None:
    old, new = load(BASE, "t-"), load(variant(_big), "t-")
    plan = change_plan.diff(old.lab, new.lab).plan
    removing = {(c.netns, " ".join(c.argv)): {tuple(f) for f in c.removes} for s in plan for c in s.commands if c.removes}
    assert removing == {
        ("t-ns-0", "route del default via 10.231.0.1"): {("t-ns-0", "route", "", "default via 10.231.0.1")},
        ("t-ns-1", "route del default via 10.231.0.1"): {("t-ns-1", "route", "", "default via 10.231.0.1")},
        ("t-ns-0", "net.ipv4.ip_forward 0"): {("t-ns-0", "sysctl", "net.ipv4.ip_forward", "")},
        (None, "link del dev t-p1"): {("t-ns-1", "device", "eth0", ""), (None, "device", "t-p1", "")},
        ("t-ns-0", "link del dev eth1"): {("t-ns-0", "device", "eth1", ""), ("t-ns-2", "device", "eth0", "")},
        (None, "netns del t-ns-2"): {("t-ns-2", "namespace", "", "")},
    }
    deleting = [c for s in plan for c in s.commands if {"del", "-D"} & set(c.argv[:2]) and not c.removes]
    assert deleting == []
    # the bridges a new port is plugged into, by the port's own `link add ... master BR`
    assert change_plan.touched_devices(plan) == {"t-br0", "t-br1", "t-p1", "t-p3", "t-p9", "t-q0"}
    ports_only = load(variant(VARIANTS["add-namespace"]), "t-")
    assert "t-br0" in change_plan.touched_devices(change_plan.diff(old.lab, ports_only.lab).plan)
    natted = load(variant(lambda doc: doc.update(nat=[{"from": "10.231.0.0/24"}])), "t-")
    outside = change_plan.diff(old.lab, natted.lab).plan  # forwarding on and NAT rules: facts of no device
    assert {fact.kind for s in outside for c in s.commands for fact in c.makes} == {"sysctl", "iptables"}
    assert change_plan.touched_devices(outside) == set()


@pytest.mark.kernel
def test_a_signal_at_any_step_leaves_exactly_the_old_lab(tmp_path: Path, prefix: str) -> None:
    old, new = load(BASE, prefix), load(variant(_big), prefix)
    setup(old, tmp_path / "a")
    try:
        before = state(old)
        steps = _apply_steps(old, new)
        assert steps > 20
        for at in range(1, steps + 1):
            env = faults.environment(tmp_path, at, "kill -TERM $$")
            result = apply(old, new, tmp_path / "ab", env=env)
            assert result.returncode == 143, (at, result.stderr)
            assert "rolled back: the lab is its old topology again" in result.stderr, (at, result.stderr)
            assert state(old) == before, at
            assert record(old) == lab_files.record_text(old.lab)
    finally:
        teardown(tmp_path / "a")
    assert leftovers(prefix) == set()


@pytest.mark.kernel
def test_a_name_taken_midway_leaves_the_old_lab_and_the_others_name(tmp_path: Path, prefix: str) -> None:
    old, new = load(BASE, prefix), load(variant(_big), prefix)
    setup(old, tmp_path / "a")
    try:
        before = state(old)
        # someone else takes the name of the new bridge port, made after routes, addresses, links,
        # a namespace and a bridge were changed
        run("ip", "link", "add", f"{prefix}p3", "type", "veth", "peer", f"{prefix}x3", check=True)
        result = apply(old, new, tmp_path / "ab")
        assert result.returncode == 1
        assert "failed at line" in result.stderr and f"name {prefix}p3" in result.stderr
        assert f"leaving the device {prefix}p3 alone: it is not the lab's" in result.stderr
        now = state(old)
        assert now.pop("drift") == [f"host: device {prefix}p3: extra", f"host: device {prefix}x3: extra"]
        before.pop("drift")
        assert now == before
        assert record(old) == lab_files.record_text(old.lab)
        assert {f"{prefix}p3", f"{prefix}x3"} <= leftovers(prefix)  # the other's devices are left alone
    finally:
        run("ip", "link", "del", f"{prefix}p3")
        teardown(tmp_path / "a")
    assert leftovers(prefix) == set()


@pytest.mark.kernel
def test_untouched_traffic_loses_nothing_and_keeps_its_devices(tmp_path: Path, prefix: str) -> None:
    def change(doc: dict) -> None:
        for kind in ("add-namespace", "move-address", "add-route", "host-end-addresses"):
            VARIANTS[kind](doc)
        doc["namespaces"]["ns-1"]["sysctls"] = {"net.ipv4.ip_forward": 1}

    old, new = load(BASE, prefix), load(variant(change), prefix)
    setup(old, tmp_path / "a")
    try:
        indexes = (ifindexes(f"{prefix}ns-0"), ifindexes(f"{prefix}ns-2"))
        writing.write(lab_files.render_apply(old.lab, new), tmp_path / "ab")
        ping = subprocess.Popen(
            ["ip", "netns", "exec", f"{prefix}ns-0", "ping", "-q", "-i", "0.02", "-c", "100", "10.232.0.2"],
            stdout=subprocess.PIPE, text=True,
        )
        time.sleep(0.6)
        applied = run("bash", tmp_path / "ab" / "apply.sh")
        out, _ = ping.communicate(timeout=30)
        assert applied.returncode == 0, applied.stderr
        match = re.search(r"(\d+) packets transmitted, (\d+) received, (\d+)% packet loss", out)
        assert match and match.groups() == ("100", "100", "0"), out
        assert (ifindexes(f"{prefix}ns-0"), ifindexes(f"{prefix}ns-2")) == indexes
    finally:
        teardown(tmp_path / "a")


# --- the property: random small labs A and B; A, then apply B, is a fresh B

NAMES = [f"ns-{i}" for i in range(4)]


@st.composite
def topologies(draw: st.DrawFn) -> dict:
    present = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=4, unique=True))
    on_bridge = [n for n in present if draw(st.booleans())]
    pairs = [(a, b) for i, a in enumerate(present) for b in present[i + 1:] if draw(st.booleans())]
    namespaces: dict = {n: {"interfaces": {}, "routes": []} for n in present}
    links: list = []
    for n in on_bridge:
        index = NAMES.index(n)
        host = 10 + index + 20 * draw(st.integers(0, 1))
        namespaces[n]["interfaces"]["eth0"] = {"addresses": [f"10.240.0.{host}/24"]}
        if draw(st.booleans()):
            namespaces[n]["routes"].append({"to": "default", "via": "10.240.0.1"})
        links.append([f"{n}:eth0", f"br0:p{index}"])
    for a, b in pairs:
        i, k = NAMES.index(a), NAMES.index(b)
        mtu = draw(st.sampled_from([None, 1400]))
        for n, other, host in ((a, k, 1), (b, i, 2)):
            iface: dict = {"addresses": [f"10.241.{i * 4 + k}.{host}/24"]}
            if mtu:
                iface["mtu"] = mtu
            namespaces[n]["interfaces"][f"e{other}"] = iface
        links.append([f"{a}:e{k}", f"{b}:e{i}"])
    for n in present:
        if draw(st.booleans()):
            namespaces[n]["sysctls"] = {"net.ipv4.ip_forward": 1}
    doc: dict = {"name": "prop", "namespaces": namespaces, "links": links}
    if on_bridge:
        doc["bridges"] = {"br0": {"addresses": ["10.240.0.1/24"]}}
    return doc


@pytest.mark.kernel
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(topologies(), topologies())
@example(  # the same link written with its ends the other way round, its addresses changed (found by hypothesis)
    a={
        "name": "prop",
        "namespaces": {"ns-1": {"interfaces": {"e2": {"addresses": ["10.241.6.1/24"]}}},
                       "ns-2": {"interfaces": {"e1": {"addresses": ["10.241.6.2/24"]}}}},
        "links": [["ns-1:e2", "ns-2:e1"]],
    },
    b={
        "name": "prop",
        "namespaces": {"ns-2": {"interfaces": {"e1": {"addresses": ["10.241.9.1/24"]}}},
                       "ns-1": {"interfaces": {"e2": {"addresses": ["10.241.9.2/24"]}}}},
        "links": [["ns-2:e1", "ns-1:e2"]],
    },
)
def test_property_apply_b_on_a_is_a_fresh_b(tmp_path_factory: pytest.TempPathFactory, a: dict, b: dict) -> None:
    prefix = f"t{uuid.uuid4().hex[:5]}-"
    tmp = tmp_path_factory.mktemp("prop")
    old, new = load(a, prefix), load(b, prefix)
    try:
        setup(old, tmp / "a")
        applied = apply(old, new, tmp / "ab")
        assert applied.returncode == 0, applied.stderr
        after = state(new)
        teardown(tmp / "ab")
        setup(new, tmp / "b")
        assert state(new) == after
        teardown(tmp / "b")
        assert leftovers(prefix) == set() and record(new) is None
    finally:
        for name in leftovers(prefix):
            run("ip", "netns", "del", name) if name in netns_names() else run("ip", "link", "del", name)
        Path(f"/run/nsgen/{prefix}prop.yaml").unlink(missing_ok=True)
        for lock in Path("/run").glob(f"nsgen-{prefix}*.lock"):
            lock.unlink()


@pytest.mark.kernel
def test_a_change_that_does_not_give_the_new_topology_is_rolled_back_naming_what_differs(tmp_path: Path, prefix: str) -> None:
    """apply.sh checks what it touched once the change is made: a plan that missed a command (here,
    taken out of the rendered apply.sh by hand) ends in the rollback, not in 'the change is applied'."""
    old, new = load(BASE, prefix), load(variant(VARIANTS["mtu"]), prefix)
    setup(old, tmp_path / "a")
    try:
        before = state(old)
        writing.write(lab_files.render_apply(old.lab, new), tmp_path / "ab")
        script = tmp_path / "ab" / "apply.sh"
        lines = script.read_text().splitlines(keepends=True)
        (mtu,) = [i for i, line in enumerate(lines) if line.lstrip().startswith("ip") and " mtu " in line and "lab_steps" not in line][:1]
        script.write_text("".join(lines[:mtu] + lines[mtu + 1 :]))
        missed = run("bash", script)
        assert missed.returncode == 1, missed.stdout + missed.stderr
        assert "apply.sh: after the change: " in missed.stderr and ": different (" in missed.stderr
        assert "apply.sh: the change did not give what the new topology declares" in missed.stderr
        assert "apply.sh: rolled back: the lab is its old topology again, and so is its record" in missed.stderr
        assert state(old) == before and record(old) == lab_files.record_text(old.lab)
    finally:
        teardown(tmp_path / "a")
    assert leftovers(prefix) == set()


@pytest.mark.kernel
def test_a_change_of_the_checks_alone_is_applied_to_the_record(tmp_path: Path, prefix: str) -> None:
    """The new topology differs only in what the kernel does not hold (a check): plan says so, apply
    records it (status then takes it as the running lab's), and applying it again is no change."""
    old = load(BASE, prefix)
    checked = {**BASE, "expect": [{"from": "ns-0", "to": "ns-1", "reachable": True}]}
    (tmp_path / "new.yaml").write_text(json.dumps(checked))
    setup(old, tmp_path / "a")
    try:
        new = [tmp_path / "new.yaml", "--prefix", prefix]
        assert nsgen("status", *new).returncode == 1  # up from another topology
        plan = nsgen("plan", *new)
        assert plan.stdout.strip() == "plan: no change in the kernel; the lab's record takes the new topology (its checks, its description)"
        applied = nsgen("apply", *new)
        assert applied.returncode == 0 and "the change is applied, and recorded" in applied.stdout, applied.stdout + applied.stderr
        assert nsgen("status", *new).returncode == 0
        assert nsgen("plan", *new).stdout.strip() == "plan: no change"
    finally:
        teardown(tmp_path / "a")
    assert leftovers(prefix) == set()
