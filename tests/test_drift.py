"""Drift, for real: every object the topology declares, removed (or changed) by hand in turn, makes
`nsgen status` and verify.sh fail, naming it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, leftovers, netns_names, nsgen, run
from live_labs import BASE, load, setup, teardown

from nsgen.plan import as_found, declared
from nsgen.problems import TopologyError
from nsgen.run import drift
from nsgen.topology.conditions import Conditions
from nsgen.topology.facts import Difference, Fact

pytestmark = pytest.mark.kernel


def _break(fact: Fact) -> list[str]:
    """The command that takes `fact` away, as someone at the shell would."""
    ip = ["ip", *(["-n", fact.netns] if fact.netns else [])]
    if fact.kind == "namespace":
        return ["ip", "netns", "del", fact.netns or ""]
    if fact.kind == "device":
        return [*ip, "link", "del", "dev", fact.device]
    if fact.kind == "up":
        return [*ip, "link", "set", "dev", fact.device, "down"]
    if fact.kind == "address":
        return [*ip, "addr", "del", fact.value, "dev", fact.device]
    if fact.kind == "mtu":
        return [*ip, "link", "set", "dev", fact.device, "mtu", "1280"]
    if fact.kind == "mac":
        return [*ip, "link", "set", "dev", fact.device, "address", "02:00:00:00:0f:0f"]
    if fact.kind == "master":
        return [*ip, "link", "set", "dev", fact.device, "nomaster"]
    if fact.kind == "route":
        return [*ip, "route", "del", *fact.value.split()]
    assert fact.kind == "sysctl"
    path = "/proc/sys/" + fact.device.replace(".", "/")
    return ["ip", "netns", "exec", fact.netns or "", "bash", "-c", f"echo 0 >{path}"]


def _subnets(index: int) -> dict:
    """BASE with subnets of its own, so that the labs of this test can run side by side."""
    text = json.dumps(BASE)
    for old, new in (("10.231.", f"10.{100 + index}."), ("10.232.", f"10.{150 + index}."), ("10.233.", f"10.{200 + index}.")):
        text = text.replace(old, new)
    return json.loads(text)


def test_every_declared_object_removed_by_hand_is_named(tmp_path: Path, prefix: str) -> None:
    facts = declared.declared(load(BASE, prefix).lab)
    kinds = {fact.kind for fact in facts}
    assert kinds == {"namespace", "device", "up", "address", "mtu", "mac", "master", "route", "sysctl"}
    assert len(facts) < 50
    labs = []
    try:
        for index, _ in enumerate(facts):
            loaded = load(_subnets(index), f"{prefix[:-1]}{index}-")
            setup(loaded, tmp_path / str(index))
            labs.append(loaded)
        for index, loaded in enumerate(labs):
            fact = declared.declared(loaded.lab)[index]
            broken = run(*_break(fact))
            assert broken.returncode == 0, (fact, broken.stderr)
        verifies = [subprocess.Popen(["bash", tmp_path / str(i) / "verify.sh"], stdout=subprocess.PIPE, text=True)
                    for i in range(len(labs))]
        statuses = [subprocess.Popen([sys.executable, "-m", "nsgen", "status", tmp_path / str(i) / "topology.yaml"],
                                     stdout=subprocess.PIPE, text=True, cwd=REPO) for i in range(len(labs))]
        for index, loaded in enumerate(labs):
            fact = declared.declared(loaded.lab)[index]
            out, _ = statuses[index].communicate(timeout=120)
            assert statuses[index].returncode == 1
            assert any(line.startswith(f"{fact.label}: ") for line in out.splitlines()), (fact.label, out)
            out, _ = verifies[index].communicate(timeout=120)
            assert verifies[index].returncode == 1
            assert f"FAIL  {fact.label}: " in out, (fact.label, out)
    finally:
        for index in range(len(labs)):
            teardown(tmp_path / str(index))
        for lock in Path("/run").glob(f"nsgen-{prefix[:-1]}*.lock"):
            lock.unlink()
    assert leftovers(prefix[:-1]) == set()


def test_status_and_verify_name_what_is_different_and_extra_alike(tmp_path: Path, prefix: str) -> None:
    loaded = load(BASE, prefix)
    setup(loaded, tmp_path / "a")
    try:
        assert "ok    lab live: every declared object is there" in run("bash", tmp_path / "a" / "verify.sh").stdout
        run("ip", "-n", f"{prefix}ns-0", "link", "set", "dev", "eth1", "mtu", "1500", check=True)
        run("ip", "-n", f"{prefix}ns-1", "link", "set", "dev", "eth0", "mtu", "1400", check=True)  # declares none
        run("ip", "-n", f"{prefix}ns-2", "route", "add", "10.99.0.0/16", "via", "10.232.0.1", check=True)
        run("ip", "-n", f"{prefix}ns-2", "addr", "add", "10.232.0.77/24", "dev", "eth0", check=True)
        run("ip", "-n", f"{prefix}ns-2", "link", "add", "name", "stray", "type", "veth", "peer", "name", "stray2", check=True)
        lines = [str(found) for found in drift.differences(loaded.lab)]
        assert lines == [
            "ns-0: eth1 mtu 9000: different (1500)",
            "ns-1: eth0 mtu 1500: different (1400)",
            "ns-2: device stray: extra",
            "ns-2: device stray2: extra",
            "ns-2: eth0 address 10.232.0.77/24: extra",
            "ns-2: route 10.99.0.0/16 via 10.232.0.1 dev eth0: extra",
        ], lines
        verify = run("bash", tmp_path / "a" / "verify.sh")
        assert verify.returncode == 1
        drifted = [line[6:] for line in verify.stdout.splitlines() if line.startswith("FAIL  ") and " -> " not in line]
        assert sorted(drifted) == sorted(lines), verify.stdout
    finally:
        teardown(tmp_path / "a")


def test_apply_converges_the_lab_from_what_the_kernel_has(tmp_path: Path, prefix: str) -> None:
    """Drift by hand in a routed dual-stack lab: status and verify name it alike, `nsgen up` points to
    apply, and `nsgen apply` of the same topology repairs exactly it."""
    topology = tmp_path / "lab.yaml"
    assert nsgen("init", "--preset", "router", "-n", "1", "-o", topology).returncode == 0
    lab = [topology, "--prefix", prefix]
    assert nsgen("up", *lab).returncode == 0
    try:
        left, router, right = (f"{prefix}{name}" for name in ("left-0", "router", "right-0"))
        for command in (
            ["-n", left, "route", "del", "default"],
            ["-n", left, "route", "add", "10.99.0.0/16", "via", "10.0.1.1"],
            ["-n", left, "addr", "add", "10.0.1.77/24", "dev", "eth0"],
            ["-n", router, "link", "set", "dev", "eth-right", "mtu", "1400"],
            ["-n", right, "link", "set", "dev", "eth0", "down"],
        ):
            run("ip", *command, check=True)
        expected = [
            "left-0: eth0 address 10.0.1.77/24: extra",
            "left-0: route 10.99.0.0/16 via 10.0.1.1 dev eth0: extra",
            "left-0: route default via 10.0.1.1: missing",
            "right-0: eth0 up: different (down)",  # and with it, the kernel drops its IPv6 address and routes
            "right-0: eth0 address fd00:2::2/64: missing",
            "right-0: route default via 10.0.2.1: missing",
            "right-0: route default via fd00:2::1: missing",
            "router: eth-right mtu 1500: different (1400)",
        ]
        status = nsgen("status", *lab)
        assert status.returncode == 1 and sorted(status.stdout.splitlines()[:-1]) == sorted(expected), status.stdout
        verify = nsgen("verify", *lab)
        drifted = sorted(line[6:] for line in verify.stdout.splitlines() if line.startswith("FAIL  ") and " -> " not in line)
        assert drifted == sorted(expected), verify.stdout
        up = nsgen("up", *lab)
        assert up.returncode == 1 and f"has drifted: nsgen apply {topology} --prefix {prefix} repairs it" in up.stderr
        plan = nsgen("plan", *lab)
        assert "+ left-0: route default via 10.0.1.1" in plan.stdout and "~ right-0: eth0 up (found down)" in plan.stdout
        applied = nsgen("apply", *lab)
        assert applied.returncode == 0, applied.stdout + applied.stderr
        after = nsgen("status", *lab)
        assert after.returncode == 0, after.stdout
        assert nsgen("verify", *lab).returncode == 0
        assert nsgen("apply", *lab).stdout.endswith("plan: no change\n")
    finally:
        nsgen("down", *lab)
    assert leftovers(prefix) == set()


def test_as_found_drops_a_lost_namespace_and_its_links() -> None:
    """The lab as found, for a plan: a namespace the kernel lost is gone with its links (the plan makes it again)."""
    lab = load(BASE, "p-").lab
    found = as_found.as_found(lab, [Difference(Fact("p-ns-2", "ns-2", "namespace"), "missing")])
    assert "ns-2" not in {ns.name for ns in found.lab.namespaces}
    assert all("ns-2:" not in f"{link.a} {link.b}" for link in found.lab.links)
    assert len(found.lab.links) == len(lab.links) - 1


def test_as_found_takes_a_netem_no_end_declares_with_its_values() -> None:
    """A netem qdisc put on by hand is the lab as found with its delay, jitter and loss (revert.sh puts them back)."""
    lab = load(BASE, "p-").lab
    end = lab.links[0].a
    extra = [Difference(Fact(end.netns, "n", kind, end.device, value), "extra")
             for kind, value in (("qdisc", "netem"), ("delay", "20ms"), ("jitter", "5ms"), ("loss", "0.5%"))]
    found = as_found.as_found(lab, extra)
    assert found.lab.links[0].sends[0] == Conditions(delay="20ms", jitter="5ms", loss="0.5%")
    assert lab.links[0].sends[0] is None


def _same_name(tmp_path: Path, letter: str, subnet: int) -> Path:
    """A topology named `same`, its namespaces and subnet its own."""
    path = tmp_path / f"{letter}.yaml"
    path.write_text(
        "name: same\nnamespaces:\n"
        f"  {letter}1: {{interfaces: {{e0: {{addresses: [10.{subnet}.0.1/24]}}}}}}\n"
        f"  {letter}2: {{interfaces: {{e0: {{addresses: [10.{subnet}.0.2/24]}}}}}}\n"
        f"links:\n- [{letter}1:e0, {letter}2:e0]\n"
    )
    return path


def test_one_lab_per_name_and_status_says_what_is_not_up(tmp_path: Path, prefix: str) -> None:
    first, second = _same_name(tmp_path, "a", 161), _same_name(tmp_path, "b", 162)
    status = nsgen("status", first, "--prefix", prefix)
    assert (status.returncode, status.stdout) == (1, "lab same is not up: nothing of it is here (nsgen up sets it up)\n")
    assert nsgen("up", first, "--prefix", prefix).returncode == 0
    try:
        refused = nsgen("up", second, "--prefix", prefix)
        assert refused.returncode == 2 and len(refused.stderr.splitlines()) == 1, refused.stderr
        assert f"lab {prefix}same is already up from another topology" in refused.stderr
        assert {f"{prefix}b1", f"{prefix}b2"} & netns_names() == set()  # nothing made
        status = nsgen("status", second, "--prefix", prefix)
        assert status.returncode == 1 and "is up from another topology" in status.stdout and "missing" not in status.stdout
        assert nsgen("status", "--prefix", prefix).returncode == 0  # without a file: the running lab, as it is
        for ns in ("a1", "a2"):  # the first lab deleted by hand: its record is no lab up
            run("ip", "netns", "del", f"{prefix}{ns}", check=True)
        assert nsgen("up", second, "--prefix", prefix).returncode == 0
        assert nsgen("status", second, "--prefix", prefix).returncode == 0
    finally:
        assert nsgen("down", "--prefix", prefix).returncode == 0
    assert leftovers(prefix[:-1]) == set()


def test_a_lab_whose_prefix_and_name_make_another_labs_key_leaves_that_lab_alone(tmp_path: Path, prefix: str) -> None:
    """Prefix P + `a-` and lab `same`, prefix P and lab `a-same`: one key, one record path. With the first up,
    the second's down, status and up are refused naming both, and its teardown.sh run by hand deletes
    nothing, the first's record neither, and its setup.sh makes nothing (found by reviews: `nsgen down` of the
    second tore the first down; its setup.sh run by hand took the first's record over)."""
    first = _same_name(tmp_path, "a", 163)
    second = tmp_path / "a-same.yaml"
    second.write_text(first.read_text().replace("name: same", "name: a-same").replace("10.163.", "10.164."))
    assert nsgen("up", first, "--prefix", f"{prefix}a-").returncode == 0
    try:
        said = f"records lab 'same' of prefix '{prefix}a-', whose prefix and name make the key of lab 'a-same' of prefix '{prefix}'"
        for command in ("down", "status", "up"):
            refused = nsgen(command, second, "--prefix", prefix)
            assert refused.returncode == 2 and said in refused.stderr, (command, refused.stdout, refused.stderr)
        assert nsgen("render", second, "--prefix", prefix, "-o", tmp_path / "second").returncode == 0
        for script in ("setup.sh", "teardown.sh", "demo.sh"):  # by hand (a review: setup.sh took the record over)
            refused = run("bash", tmp_path / "second" / script)
            assert refused.returncode == 2 and "records another lab (name: same, prefix: " in refused.stderr, refused.stderr
        assert {f"{prefix}a1", f"{prefix}a2"} & netns_names() == set()  # the second made nothing
        assert nsgen("status", first, "--prefix", f"{prefix}a-").returncode == 0  # all of it there, its record too
    finally:
        assert nsgen("down", first, "--prefix", f"{prefix}a-").returncode == 0
    assert leftovers(prefix[:-1]) == set()


def test_a_record_that_names_no_lab_is_no_lab_up(tmp_path: Path, prefix: str) -> None:
    """An empty record (a disk full as it was written, a hand's `: >`) names no lab: `nsgen up` sets the lab up
    over it and `nsgen down` tears it down, as the scripts take it (found by a review: both were refused,
    naming only the record's file name, which read as the user's own file)."""
    first = _same_name(tmp_path, "a", 165)
    record = Path(f"/run/nsgen/{prefix}same.yaml")
    record.parent.mkdir(exist_ok=True)
    record.write_text("")
    try:
        up = nsgen("up", first, "--prefix", prefix)
        assert up.returncode == 0, up.stdout + up.stderr
        assert record.read_text().startswith("name: same\n")
    finally:
        down = nsgen("down", first, "--prefix", prefix)
    assert down.returncode == 0 and not record.exists(), down.stdout + down.stderr
    assert leftovers(prefix[:-1]) == set()


def test_status_as_anyone_but_root_is_refused_rather_than_naming_everything_missing(prefix: str) -> None:
    """Only root reads a lab namespace (`ip -n`): as nobody, every object read as missing; now it says why it cannot.
    The reading runs in a child turned nobody (a fork: nothing to import, wherever the checkout lies)."""
    loaded = load(BASE, prefix)
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # the child: nobody, reading the lab's kernel state
        os.close(reader)
        os.setgid(65534)
        os.setuid(65534)
        try:
            said = f"read {len(drift.differences(loaded.lab))} difference(s)"
        except TopologyError as refused:
            said = str(refused)
        os.write(writer, said.encode())
        os._exit(0)
    os.close(writer)
    with os.fdopen(reader) as told:
        said = told.read()
    os.waitpid(child, 0)
    assert said == f"lab {prefix}live: reading its namespaces needs root (nsenter): run it as root"


def test_apply_removes_an_extra_host_address_of_a_declared_ip_and_only_it(tmp_path: Path, prefix: str) -> None:
    """An extra /32 of the IP the bridge (or an interface) declares as a /24: apply deletes the /32 by its
    prefix length (a bare `ip addr del IP` deletes the first address of that IP: the declared one)."""
    topology = tmp_path / "live.yaml"
    topology.write_text(json.dumps(BASE))
    lab = [topology, "--prefix", prefix]
    assert nsgen("up", *lab).returncode == 0
    try:
        run("ip", "addr", "add", "10.231.0.1/32", "dev", f"{prefix}br0", check=True)
        run("ip", "-n", f"{prefix}ns-0", "addr", "add", "10.231.0.2/32", "dev", "eth0", check=True)
        status = nsgen("status", *lab)
        assert status.stdout.splitlines()[:2] == ["ns-0: eth0 address 10.231.0.2/32: extra", "host: " + f"{prefix}br0 address 10.231.0.1/32: extra"]
        applied = nsgen("apply", *lab)
        assert applied.returncode == 0 and "wildcard" not in applied.stderr, applied.stdout + applied.stderr
        assert nsgen("status", *lab).returncode == 0
        bridge = json.loads(run("ip", "-j", "addr", "show", "dev", f"{prefix}br0").stdout)[0]["addr_info"]
        assert [(a["local"], a["prefixlen"]) for a in bridge if a["family"] == "inet"] == [("10.231.0.1", 24)]
    finally:
        nsgen("down", *lab)
    assert leftovers(prefix[:-1]) == set()


def test_apply_removes_typed_routes_and_rules_and_repairs_a_renamed_interface(tmp_path: Path, prefix: str) -> None:
    """Routes of every type and policy rules added by hand in a lab namespace, and a bridged interface
    renamed by hand: status names each; apply puts the lab back as declared, and the interface made
    again (a new MAC) answers its bridge's neighbours at once: they forget its old MAC."""
    topology = tmp_path / "live.yaml"
    topology.write_text(json.dumps(_subnets(7)))
    lab = [topology, "--prefix", prefix]
    assert nsgen("up", *lab).returncode == 0
    try:
        ns0, ns1 = (f"{prefix}ns-{i}" for i in range(2))
        assert run("ip", "netns", "exec", ns1, "ping", "-c1", "-W1", "10.107.0.2").returncode == 0  # ns-1 knows its MAC
        for command in (
            ["-n", ns0, "route", "add", "blackhole", "10.77.1.0/24"],
            ["-n", ns0, "route", "add", "unreachable", "10.77.2.0/24"],
            ["-n", ns0, "route", "add", "prohibit", "10.77.3.0/24"],
            ["-n", ns0, "route", "add", "throw", "10.77.4.0/24", "table", "100"],
            ["-n", ns0, "route", "add", "10.77.5.0/24", "dev", "eth1", "table", "101"],
            ["-n", ns0, "rule", "add", "priority", "100", "from", "10.77.0.0/16", "lookup", "100"],
            ["-n", ns0, "-6", "rule", "add", "priority", "200", "lookup", "200"],
            ["-n", ns0, "link", "set", "dev", "eth0", "down"],
            ["-n", ns0, "link", "set", "dev", "eth0", "name", "eth9"],
        ):
            run("ip", *command, check=True)
        status = nsgen("status", *lab)
        found = status.stdout.splitlines()
        for line in (
            "ns-0: route blackhole 10.77.1.0/24: extra",
            "ns-0: route unreachable 10.77.2.0/24: extra",
            "ns-0: route prohibit 10.77.3.0/24: extra",
            "ns-0: route throw 10.77.4.0/24 table 100: extra",
            "ns-0: route 10.77.5.0/24 dev eth1 table 101: extra",
            "ns-0: rule 100 from 10.77.0.0/16 lookup 100: extra",
            "ns-0: rule -6 200 from all lookup 200: extra",
            "ns-0: device eth0: missing",
            "ns-0: device eth9: extra",
        ):
            assert line in found, status.stdout
        assert status.returncode == 1
        applied = nsgen("apply", *lab)
        assert applied.returncode == 0, applied.stdout + applied.stderr
        assert run("ip", "netns", "exec", ns1, "ping", "-c1", "-W1", "10.107.0.2").returncode == 0
        after = nsgen("status", *lab)
        assert after.returncode == 0, after.stdout
        routes = run("ip", "-n", ns0, "-o", "route", "show", "table", "all", check=True).stdout
        rules = run("ip", "-n", ns0, "-o", "rule", "show", check=True).stdout + run("ip", "-n", ns0, "-o", "-6", "rule", "show", check=True).stdout
        assert "10.77." not in routes and "lookup 100" not in rules and "lookup 200" not in rules
        links = {link["ifname"] for link in json.loads(run("ip", "-n", ns0, "-j", "link", "show", check=True).stdout)}
        assert links == {"lo", "eth0", "eth1"}
    finally:
        nsgen("down", *lab)
    assert leftovers(prefix) == set()
