"""The checks a topology declares beyond pings: TCP connections (bash's /dev/tcp), a namespace's every
address, and commands whose output must match; each passes when it should and fails when it should."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import live_labs
import pytest
from conftest import ip_json, leftovers, run
from test_services import _web

from nsgen.plan import lab_plans
from nsgen.plan.commands import Connect, Probe
from nsgen.render import lab_files, writing
from nsgen.topology import yaml_file
from nsgen.validate import sources
from nsgen.validate.lab import build_lab

GET = 'exec 3<>/dev/tcp/10.95.0.1/8080; printf "GET / HTTP/1.0\\r\\n\\r\\n" >&3; cat <&3'
CHECKS = [
    {"from": "client", "tcp": "10.95.0.1:8080"},  # open, as it should be
    {"from": "client", "tcp": "10.95.0.1:8081", "open": False},  # closed, as it should be
    {"from": "client", "tcp": "10.95.0.1:8081"},  # closed, and should be open: fails
    {"from": "client", "to": "web", "reachable": False},  # answered, and should not be: fails
    {"in": "client", "run": GET, "output": "Directory listing for /"},  # matches
    {"in": "client", "run": "echo hello; exit 3", "output": "^bye"},  # does not match: fails
    {"in": "client", "run": "echo hello; exit 3", "output": "hello"},  # matches, but exits 3: fails
    {"in": "client", "run": "cat /nonexistent/hello-world", "output": "hello-world"},  # stderr is not matched: fails
    {"in": "client", "run": "false", "output": ""},  # an empty pattern: exit 0 is all, and false exits 1
    {"in": "client", "run": "true", "output": ""},  # passes
]


def test_each_kind_of_check_is_planned_and_round_trips() -> None:
    lab = build_lab({**_web(), "expect": CHECKS}, "t", prefix="p-")
    assert build_lab(yaml_file.document(lab), "t", prefix="p-").expect == lab.expect
    planned = [c for step in lab_plans.checks(lab) for c in step.commands]
    assert planned[:3] == [
        Connect("client", "p-client", lab.expect[0].address, 8080),
        Connect("client", "p-client", lab.expect[0].address, 8081, open=False),
        Connect("client", "p-client", lab.expect[0].address, 8081),
    ]
    assert planned[3:5] == [Probe("client", "p-client", GET, "Directory listing for /"), Probe("client", "p-client", "echo hello; exit 3", "^bye")]


@pytest.mark.kernel
def test_verify_runs_each_check_after_its_own_one_line_each(tmp_path: Path, prefix: str) -> None:
    loaded = live_labs.load({**_web(), "expect": CHECKS}, prefix)
    lab_dir = tmp_path / "lab"
    writing.write(lab_files.render(loaded), lab_dir)
    assert run("bash", lab_dir / "setup.sh").returncode == 0
    try:
        result = run("bash", lab_dir / "verify.sh")
    finally:
        assert run("bash", lab_dir / "teardown.sh").returncode == 0
    assert result.returncode == 1
    assert result.stdout.splitlines()[1:] == [
        "ok    web -> 10.95.0.2 (client:eth0)",
        "FAIL  client -> 10.95.0.1 (expect: unreachable)",
        "ok    client -> 10.95.0.1:8080 (tcp open)",
        "ok    client -> 10.95.0.1:8081 (tcp closed)",
        "FAIL  client -> 10.95.0.1:8081 (tcp closed, open expected)",
        f"ok    client: {GET} (its output matches Directory listing for /)",
        "FAIL  client: echo hello; exit 3 (exit status 3; stdout: hello)",
        "FAIL  client: echo hello; exit 3 (exit status 3; stdout: hello)",
        "FAIL  client: cat /nonexistent/hello-world (exit status 1; stderr: cat: /nonexistent/hello-world: No such file or directory)",
        "FAIL  client: false (exit status 1)",
        "ok    client: true (it exits 0)",
        "lab web: 5 passed, 6 failed (its checks)",
    ]
    assert leftovers(prefix) == set()


@pytest.mark.kernel
def test_a_tcp_check_reaches_an_ipv6_address(tmp_path: Path, prefix: str) -> None:
    """`tcp: "[ADDRESS]:PORT"`: bash's /dev/tcp connects to an IPv6 address; open where the server listens, closed
    where it does not."""
    document = _web(f"{sys.executable} -m http.server 8080 --bind fd00:95::1 --directory /")
    document["namespaces"]["web"]["interfaces"]["eth0"]["addresses"] = ["fd00:95::1/64"]
    document["namespaces"]["client"]["interfaces"]["eth0"]["addresses"] = ["fd00:95::2/64"]
    document["expect"] = [{"from": "client", "tcp": "[fd00:95::1]:8080"}, {"from": "client", "tcp": "[fd00:95::1]:8081"}]
    loaded = live_labs.load(document, prefix)
    lab_dir = tmp_path / "lab"
    writing.write(lab_files.render(loaded), lab_dir)
    setup = run("bash", lab_dir / "setup.sh")
    assert setup.returncode == 0, setup.stdout + setup.stderr
    try:
        result = run("bash", lab_dir / "verify.sh")
    finally:
        assert run("bash", lab_dir / "teardown.sh").returncode == 0
    assert result.returncode == 1
    assert result.stdout.splitlines()[-3:] == [
        "ok    client -> [fd00:95::1]:8080 (tcp open)",
        "FAIL  client -> [fd00:95::1]:8081 (tcp closed, open expected)",
        "lab web: 3 passed, 1 failed (its checks)",
    ]
    assert leftovers(prefix) == set()


#: Checks with their verdict, and what demo.sh says of those that fail.
VERDICTS = [
    ({"in": "client", "run": GET, "output": "Directory listing for /"}, None),
    ({"in": "client", "run": "echo hello", "output": "^bye"}, "demo.sh: FAIL: its output does not match ^bye"),
    ({"in": "client", "run": "cat /nonexistent/hello-world", "output": "hello-world"}, "demo.sh: FAIL: exit status 1"),
    ({"in": "client", "run": "sleep 30; echo late", "output": "late"}, "demo.sh: FAIL: not done within 10 s"),
    ({"from": "client", "tcp": "10.95.0.1:8081"}, "demo.sh: FAIL: exit status 1"),
]


@pytest.mark.kernel
@pytest.mark.parametrize(("check", "said"), VERDICTS, ids=["matches", "mismatch", "exit-1", "too-slow", "tcp-closed"])
def test_demo_gives_each_check_the_verdict_verify_gives_it(check: dict, said: str | None, tmp_path: Path, prefix: str) -> None:
    loaded = live_labs.load({**_web(), "expect": [check]}, prefix)
    lab_dir = tmp_path / "lab"
    writing.write(lab_files.render(loaded), lab_dir)
    assert run("bash", lab_dir / "setup.sh").returncode == 0
    try:
        verify = run("bash", lab_dir / "verify.sh")
    finally:
        assert run("bash", lab_dir / "teardown.sh").returncode == 0
    demo = run("bash", lab_dir / "demo.sh", "--delay", "0")
    assert (demo.returncode == 0, verify.returncode == 0) == (said is None, said is None), demo.stdout + demo.stderr
    if said is not None:
        assert said in demo.stderr.splitlines()
    assert leftovers(prefix) == set()


def _neighbours(netns: list[str]) -> int:
    return sum(len(ip_json("-n", ns, "neigh", "show")) for ns in netns)


@pytest.mark.kernel
def test_verify_flushes_the_neighbour_entries_of_its_pings_where_the_machines_table_is_tight(tmp_path: Path, prefix: str) -> None:
    """Every namespace shares one ARP table of at most gc_thresh3 entries (1024 by default: a bridge lab of
    1000 namespaces made 80 pings fail for that alone). Where the lab's pings need more, verify.sh flushes
    each pinging namespace's entries once its pings are reported, and says so. Seen here through a private
    mount namespace whose gc_thresh3 reads 3 (the machine's own is never changed)."""
    loaded = live_labs.load(_web(), prefix)
    lab_dir = tmp_path / "lab"
    writing.write(lab_files.render(loaded), lab_dir)
    small = tmp_path / "gc_thresh3"
    small.write_text("3\n")
    limit = "/proc/sys/net/ipv4/neigh/default/gc_thresh3"
    sources = sorted({line.split()[4] for line in (lab_dir / "verify.sh").read_text().splitlines() if line.startswith("  check ")})
    assert run("bash", lab_dir / "setup.sh").returncode == 0
    try:
        as_is = run("bash", lab_dir / "verify.sh")
        kept = _neighbours(sources)
        shrunk = run("unshare", "--mount", "--propagation", "private", "--", "bash", "-c",
                     f'mount --bind "$1" {limit} && bash "$2"', "-", small, lab_dir / "verify.sh")  # fmt: skip
        flushed = _neighbours(sources)
    finally:
        assert run("bash", lab_dir / "teardown.sh").returncode == 0
    assert as_is.returncode == 0 and "neighbour entries" not in as_is.stderr
    assert shrunk.returncode == 0, shrunk.stderr
    assert shrunk.stderr == (
        "verify.sh: note: its 2 IPv4 pings need up to 4 neighbour entries, and this machine keeps at most 3 for all its"
        " namespaces (net.ipv4.neigh.default.gc_thresh3): each namespace's entries are flushed once its pings are done\n"
    )
    assert sources and kept > 0 and flushed == 0, (sources, kept, flushed)
    assert leftovers(prefix) == set()


@pytest.mark.kernel
def test_a_meshs_pings_are_counted_and_its_entries_flushed_before_they_reach_the_table(tmp_path: Path, prefix: str) -> None:
    """In a mesh each namespace pings every other: what one holds for answering the pings after its own is
    never its own to flush, and a mesh of 50 overflowed the 1024 entries (50 pings failed for that alone).
    verify.sh counts the entries at both ends of each ping and, at half the table, flushes every namespace
    counted: with gc_thresh3 reading 16 (a private mount namespace), a mesh of 6 (30 pings) never holds more
    than 8 and the 2 of a ping starting (sampled as it runs), where flushing each source alone let the
    entries of the pings answered after it reach 15; and it ends holding none."""
    lab_dir = tmp_path / "mesh"
    writing.write(lab_files.render(sources.load(preset="mesh", prefix=prefix, count=6)), lab_dir)
    small = tmp_path / "gc_thresh3"
    small.write_text("16\n")
    limit = "/proc/sys/net/ipv4/neigh/default/gc_thresh3"
    netns = [f"{prefix}ns-{i}" for i in range(6)]
    assert run("bash", lab_dir / "setup.sh").returncode == 0
    samples: list[int] = []
    try:
        verify = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "--", "bash", "-c",
             f'mount --bind "$1" {limit} && bash "$2"', "-", str(small), str(lab_dir / "verify.sh")],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        while verify.poll() is None:
            samples.append(_neighbours(netns))
        out, err = verify.communicate()
        held = _neighbours(netns)
    finally:
        assert run("bash", lab_dir / "teardown.sh").returncode == 0
    assert verify.returncode == 0 and "30 passed, 0 failed" in out, out + err
    assert max(samples, default=0) <= 10 and held == 0, (samples, held)
    assert leftovers(prefix) == set()


@pytest.mark.kernel
def test_a_drifted_labs_failing_checks_wait_side_by_side_not_in_turn(tmp_path: Path, prefix: str) -> None:
    """web's interface set down by hand: each of eight TCP checks waits its whole 2 s for an answer
    that never comes. They wait at once, so verify takes about one wait, not eight (16 s), and still
    reports them in order."""
    ports = range(8080, 8088)
    document = {**_web(), "expect": [{"from": "client", "tcp": f"10.95.0.1:{port}"} for port in ports]}
    lab_dir = tmp_path / "lab"
    writing.write(lab_files.render(live_labs.load(document, prefix)), lab_dir)
    assert run("bash", lab_dir / "setup.sh").returncode == 0
    try:
        run("ip", "-n", f"{prefix}web", "link", "set", "dev", "eth0", "down", check=True)
        start = time.monotonic()
        result = run("bash", lab_dir / "verify.sh")
        took = time.monotonic() - start
    finally:
        assert run("bash", lab_dir / "teardown.sh").returncode == 0
    tcp = [line for line in result.stdout.splitlines() if "(tcp " in line]
    assert tcp == [f"FAIL  client -> 10.95.0.1:{port} (tcp closed, open expected)" for port in ports], result.stdout
    assert result.returncode == 1 and "FAIL  web: eth0 up: different (down)" in result.stdout
    assert took < 8, f"verify took {took:.1f} s"
    assert leftovers(prefix) == set()


@pytest.mark.kernel
def test_ctrl_c_during_verify_stops_its_command_checks_and_leaves_no_scratch(tmp_path: Path, prefix: str) -> None:
    """A terminal's Ctrl-C (SIGINT to the process group) while two command checks run: verify says so,
    exits 130, and neither command is left running in the lab's namespaces, nor its output in /tmp."""
    document = {**_web(), "expect": [{"in": "client", "run": "sleep 30", "output": ""}, {"in": "web", "run": "sleep 31", "output": ""}]}
    lab_dir = tmp_path / "lab"
    writing.write(lab_files.render(live_labs.load(document, prefix)), lab_dir)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    assert run("bash", lab_dir / "setup.sh").returncode == 0
    try:
        env = {**os.environ, "TMPDIR": str(scratch)}
        verify = subprocess.Popen(["bash", lab_dir / "verify.sh"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True, env=env)
        running = f"ip netns pids {prefix}client"
        deadline = time.monotonic() + 10
        while not run("bash", "-c", running).stdout.split() and time.monotonic() < deadline:  # the check's sleep has started
            time.sleep(0.05)
        os.killpg(verify.pid, signal.SIGINT)
        out, err = verify.communicate(timeout=10)
        assert verify.returncode == 130 and "verify.sh: interrupted: lab web was not fully checked" in err, (out, err)
        time.sleep(0.3)
        left = run("bash", "-c", f"{running}; ip netns pids {prefix}web").stdout.split()
        commands = [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in left if Path(f"/proc/{pid}/cmdline").exists()]
        assert not [c for c in commands if c.startswith(b"sleep\x003")], commands  # the services' own sleep 600 stays
        assert list(scratch.iterdir()) == []
    finally:
        assert run("bash", lab_dir / "teardown.sh").returncode == 0
    assert leftovers(prefix) == set()


@pytest.mark.kernel
def test_failed_pings_spread_among_good_ones_do_not_wait_in_turn(tmp_path: Path, prefix: str) -> None:
    """A bridge lab of 8 with one namespace's interface down: its 15 failing pings (2 s each) are spread
    among 64. A slot freed by any ping starts the next, so they wait together: verify takes a few
    seconds, not one wait per failure (14.5 s when the oldest ping held the next one back)."""
    lab_dir = tmp_path / "lab"
    writing.write(lab_files.render(sources.load(preset="bridge", prefix=prefix, count=8)), lab_dir)
    assert run("bash", lab_dir / "setup.sh").returncode == 0
    try:
        run("ip", "-n", f"{prefix}ns-3", "link", "set", "dev", "eth0", "down", check=True)
        start = time.monotonic()
        result = run("bash", lab_dir / "verify.sh")
        took = time.monotonic() - start
        script = (lab_dir / "verify.sh").read_text()
        (lab_dir / "verify-bash50.sh").write_text(script.replace("then any_ended=1; fi", "then any_ended=0; fi"))
        older = run("bash", lab_dir / "verify-bash50.sh").stdout
        older_bash = [line for line in older.splitlines() if " -> " in line]
    finally:
        assert run("bash", lab_dir / "teardown.sh").returncode == 0
    pings = [line for line in result.stdout.splitlines() if " -> " in line]
    failed = [line for line in pings if line.startswith("FAIL")]
    assert len(pings) == 64 and len(failed) == 15 and all(line.startswith("FAIL  ns-3 ") or "(ns-3:eth0)" in line for line in failed)
    assert took < 7, f"verify took {took:.1f} s"
    assert pings == older_bash, "with bash 5.0 (no wait -n -p), the same verdicts in the same order"
    assert leftovers(prefix) == set()


@pytest.mark.kernel
def test_a_command_check_leaves_nothing_running(tmp_path: Path, prefix: str) -> None:
    """A command check that starts a process in the background and ends: verify passes it, and stops
    what it left running (in the check's own process group; demo.sh runs its checks through the same within)."""
    check = {"in": "client", "run": "sleep 301 & echo started", "output": "started"}
    document = {**_web(), "expect": [check]}
    lab_dir = tmp_path / "lab"
    writing.write(lab_files.render(live_labs.load(document, prefix)), lab_dir)
    assert run("bash", lab_dir / "setup.sh").returncode == 0
    try:
        result = run("bash", lab_dir / "verify.sh")
        assert result.returncode == 0 and "ok    client: sleep 301 & echo started" in result.stdout, result.stdout
        left = run("ip", "netns", "pids", f"{prefix}client").stdout.split()
        assert not [pid for pid in left if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"sleep\x00301")]
    finally:
        assert run("bash", lab_dir / "teardown.sh").returncode == 0
    assert leftovers(prefix) == set()
