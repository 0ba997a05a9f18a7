"""Rollback, locking, dry runs, preflight and hostile input, against the real kernel.

The fault matrix: for `pair` and `bridge`, in both styles, and for every step k of setup.sh,
(a) SIGTERM at step k, (b) step k made to fail for real (its name taken by someone else, or what
it changes deleted). Afterwards no object of the lab may remain, and a name taken by "someone
else" must still be there. The totals go to the terminal summary.
"""

import contextlib
import fcntl
import ipaddress
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import faults
import pytest
from conftest import ip_json, leftovers, netns_names, nsgen, root_link_names, run, shellcheck
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nsgen.problems import TopologyError
from nsgen.render import lab_files, writing
from nsgen.topology import presets, yaml_file
from nsgen.validate import sources

MATRIX_TOTALS = {"faults injected": 0, "survived": 0, "objects leaked": 0}


def _render(tmp_path: Path, preset: str, prefix: str, style: str, count: int | None = None) -> Path:
    lab_dir = tmp_path / f"{preset}-{style}"
    writing.write(lab_files.render(sources.load(preset=preset, prefix=prefix, count=count), style), lab_dir)
    return lab_dir


def _exists(kind: str, name: str) -> bool:
    return name in (netns_names() if kind == "netns" else root_link_names())


def _remove(kind: str, name: str) -> None:
    subprocess.run(["ip", "netns", "del", name] if kind == "netns" else ["ip", "link", "del", name], check=False)


@pytest.mark.kernel
@pytest.mark.parametrize("style", ["tutorial", "batched"])
@pytest.mark.parametrize("preset", ["pair", "bridge"])
def test_fault_matrix(tmp_path: Path, prefix: str, preset: str, style: str) -> None:
    lab_dir = _render(tmp_path, preset, prefix, style)
    setup = lab_dir / "setup.sh"
    clean = run("bash", setup, env=faults.environment(tmp_path, 0, ":"))
    assert clean.returncode == 0, clean.stderr
    steps = faults.steps_run(tmp_path)
    assert run("bash", lab_dir / "teardown.sh").returncode == 0
    batch_plant = ("link", f"{prefix}veth-2") if preset == "bridge" else ("netns", f"{prefix}ns-1")
    failures = []
    for step in range(1, steps + 1):
        for action in ("kill -TERM $$", "__fault_break"):
            result = run("bash", setup, env=faults.environment(tmp_path, step, action, batch_plant))
            MATRIX_TOTALS["faults injected"] += 1
            taken = faults.planted(tmp_path)
            left = leftovers(prefix) - ({taken[1]} if taken else set())
            intact = taken is None or _exists(*taken)
            if result.returncode != 0 and not left and intact:
                MATRIX_TOTALS["survived"] += 1
            else:
                MATRIX_TOTALS["objects leaked"] += len(left)
                failures.append((step, action, result.returncode, sorted(left), taken, intact, result.stderr[-300:]))
            if taken:
                _remove(*taken)
            assert run("bash", lab_dir / "teardown.sh").returncode == 0
    assert not failures, failures
    assert leftovers(prefix) == set()


#: A bridge lab of this many namespaces has more batches than run at once (64): a failure or a
#: signal meets namespace batches still running in the background.
MANY = 120


@pytest.mark.kernel
@pytest.mark.parametrize(
    ("case", "at", "action", "plant"),
    [
        # the root batch cannot make ns-110's port: its name is taken
        ("port taken", 1, "__fault_break", ("link", "veth-110")),
        # nor its namespace
        ("namespace taken", 1, "__fault_break", ("netns", "ns-110")),
        # a signal while the batches of ns-0 … ns-58 run in the background
        ("signal", 60, "kill -TERM $$", ("netns", "")),
    ],
)
def test_a_failure_among_running_batches_removes_what_setup_created(
    tmp_path: Path, prefix: str, case: str, at: int, action: str, plant: tuple[str, str]
) -> None:
    lab_dir = _render(tmp_path, "bridge", prefix, "batched", MANY)
    kind, name = plant
    result = run("bash", lab_dir / "setup.sh", env=faults.environment(tmp_path, at, action, (kind, prefix + name if name else "")))
    taken = faults.planted(tmp_path)
    try:
        assert result.returncode != 0
        assert leftovers(prefix) == ({taken[1]} if taken else set())
        if taken:
            assert _exists(*taken), "the name someone else took must survive the rollback"
            # the failed line, and the line of the root batch, are named
            root = next(n for n, line in enumerate((lab_dir / "setup.sh").read_text().splitlines(), 1) if "root_batch <<" in line)
            failed = re.search(r"batch failed \((.*)\) at line", result.stderr)
            assert failed and f"{prefix}{name}" in failed.group(1).split()
            assert f"at line {root}: root_batch <<'NSGEN'" in result.stderr
        else:
            assert "terminated at line" in result.stderr
    finally:
        if taken:
            _remove(*taken)
        run("bash", lab_dir / "teardown.sh")
    assert leftovers(prefix) == set()


@pytest.mark.kernel
def test_a_lab_of_many_batches_comes_up_verifies_and_goes(tmp_path: Path, prefix: str) -> None:
    """More namespace batches than run at once build the lab, and a namespace's sysctl (ns-110's) is set."""
    document = yaml_file.document(sources.load(preset="bridge", prefix=prefix, count=MANY).lab)
    document["namespaces"]["ns-110"]["sysctls"] = {"net.ipv4.conf.eth0.rp_filter": 2}
    lab_dir = tmp_path / "many"
    writing.write(lab_files.render(sources.from_document(document, "many.yaml", "many.yaml")), lab_dir)
    try:
        setup = run("bash", lab_dir / "setup.sh")
        assert setup.returncode == 0, setup.stderr
        assert {f"{prefix}ns-{i}" for i in range(MANY)} <= netns_names()
        inside = ["ip", "netns", "exec", f"{prefix}ns-110", "cat", "/proc/sys/net/ipv4/conf/eth0/rp_filter"]
        assert run(*inside).stdout.strip() == "2"
        verify = run("bash", lab_dir / "verify.sh")
        assert verify.returncode == 0, verify.stdout[-2000:]
    finally:
        assert run("bash", lab_dir / "teardown.sh").returncode == 0
    assert leftovers(prefix) == set()


@pytest.mark.kernel
def test_teardown_twice_and_after_a_namespace_was_deleted_by_hand(tmp_path: Path, prefix: str) -> None:
    lab_dir = _render(tmp_path, "bridge", prefix, "batched")
    assert run("bash", lab_dir / "setup.sh").returncode == 0
    run("ip", "netns", "del", f"{prefix}ns-1", check=True)
    first = run("bash", lab_dir / "teardown.sh")
    assert first.returncode == 0 and "deleted 2 namespace(s)" in first.stdout
    second = run("bash", lab_dir / "teardown.sh")
    assert second.returncode == 0 and "nothing to delete" in second.stdout
    assert leftovers(prefix) == set()


@pytest.mark.kernel
def test_a_second_setup_fails_fast_while_the_lock_is_held(tmp_path: Path, prefix: str) -> None:
    lab_dir = _render(tmp_path, "pair", prefix, "batched")
    lock = Path(f"/run/nsgen-{prefix}pair.lock")
    holder = lock.open("w")
    fcntl.flock(holder, fcntl.LOCK_EX)  # as a setup.sh of this lab in progress holds it
    try:
        for script in ("setup.sh", "teardown.sh"):
            busy = subprocess.run(["timeout", "5", "bash", str(lab_dir / script)], capture_output=True, text=True)
            assert busy.returncode == 3, busy.stderr
            assert f"lab pair is busy: another run holds {lock}" in busy.stderr
        assert leftovers(prefix) == set()
    finally:
        holder.close()
    assert run("bash", lab_dir / "setup.sh").returncode == 0
    assert run("bash", lab_dir / "teardown.sh").returncode == 0
    assert leftovers(prefix) == set()


@pytest.mark.kernel
def test_a_run_that_locked_a_lock_file_just_deleted_locks_the_new_one(tmp_path: Path, prefix: str) -> None:
    """The lock file is deleted by the run that held it as it ends. A run that opened it just before,
    and locked it just after, holds a lock no other run sees: it must open and lock the file again.
    A flock on PATH deletes the lock file the first time it is called, as the ending run would."""
    lab_dir = _render(tmp_path, "pair", prefix, "batched")
    lock = Path(f"/run/nsgen-{prefix}pair.lock")
    calls = tmp_path / "flock-calls"
    wrapper = tmp_path / "bin" / "flock"
    wrapper.parent.mkdir()
    wrapper.write_text(
        "#!/bin/bash\n"
        f"echo called >>{calls}\n"
        f"if (( $(wc -l <{calls}) == 1 )); then rm -f {lock}; fi\n"
        'exec /usr/bin/flock "$@"\n'
    )
    wrapper.chmod(0o755)
    env = {**os.environ, "PATH": f"{wrapper.parent}:{os.environ['PATH']}"}
    try:
        setup = subprocess.run(["bash", str(lab_dir / "setup.sh")], capture_output=True, text=True, env=env, check=False)
        assert setup.returncode == 0, setup.stderr
        assert calls.read_text().count("called") == 2  # locked the deleted file, saw it, locked the new one
        assert lock.exists()  # the file it holds is the one at the path (the lab is up: it stays)
    finally:
        assert run("bash", lab_dir / "teardown.sh").returncode == 0
    assert leftovers(prefix) == set() and not lock.exists()


@pytest.mark.kernel
def test_two_labs_in_parallel_ten_times(tmp_path: Path, prefix: str) -> None:
    other = prefix[:-1] + "p-"
    moved = presets.bridge(3)
    moved["bridges"]["v-net-0"] = {"addresses": ["172.19.0.1/16"], "subnet": "172.19.0.0/16"}
    moved["namespaces"] = {name: {"routes": [{"to": "default", "via": "172.19.0.1"}]} for name in moved["namespaces"]}
    dirs = [_render(tmp_path / "a", "bridge", prefix, "batched")]
    dirs.append(tmp_path / "b" / "bridge")
    writing.write(lab_files.render(sources.from_document(moved, "t", "t", other)), dirs[1])
    errors: list[str] = []

    def cycle(lab_dir: Path) -> None:
        for _ in range(10):
            for script in ("setup.sh", "verify.sh", "teardown.sh"):
                result = run("bash", lab_dir / script)
                if result.returncode != 0:
                    errors.append(f"{lab_dir} {script}: {result.stdout}{result.stderr}")

    try:
        threads = [threading.Thread(target=cycle, args=(d,)) for d in dirs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for name in sorted(leftovers(other)):
            _remove("netns", name)
            _remove("link", name)
        for stale in Path("/run").glob(f"nsgen-{other}*.lock"):
            stale.unlink()
    assert errors == []
    assert leftovers(prefix) == leftovers(other) == set()


def test_dry_run_changes_nothing_and_prints_every_command(tmp_path: Path, prefix: str) -> None:
    # a lab up on this machine may route the bridge's subnet (the guide's Part II, under any prefix): setup.sh's dry
    # run then refuses, as setup.sh would, and shows with --force what it would do all the same
    subnet = ipaddress.ip_network("172.16.0.0/16")
    routed = [route["dst"] for route in ip_json("route", "show")
              if route["dst"] != "default" and ipaddress.ip_network(route["dst"]).overlaps(subnet)]
    force = ["--force"] if routed else []
    for style in ("batched", "tutorial"):
        lab_dir = _render(tmp_path, "bridge", prefix, style)
        for script in ("setup.sh", "verify.sh", "teardown.sh"):
            result = run("bash", lab_dir / script, "--dry-run", *(force if script == "setup.sh" else []))
            assert result.returncode == 0, result.stderr
            assert leftovers(prefix) == set()
        if routed:
            refused = run("bash", lab_dir / "setup.sh", "--dry-run")
            assert refused.returncode == 2 and f"172.16.0.0/16 overlaps the route {routed[0]}" in refused.stderr
        dry = run("bash", lab_dir / "setup.sh", "--dry-run", *force).stdout
        assert f"netns add {prefix}ns-0" in dry and "dry run: nothing was changed" in dry
        assert "route add default via 172.16.0.1" in dry


@pytest.mark.kernel
def test_preflight_refuses_a_subnet_overlapping_a_root_route(tmp_path: Path, prefix: str) -> None:
    blocker, peer = f"{prefix}x", f"{prefix}y"
    run("ip", "link", "add", blocker, "type", "veth", "peer", peer, check=True)
    try:
        run("ip", "addr", "add", "172.16.5.1/24", "dev", blocker, check=True)
        run("ip", "link", "set", blocker, "up", check=True)  # a route 172.16.5.0/24 inside the lab's /16
        lab_dir = _render(tmp_path, "bridge", prefix, "batched")
        refused = run("bash", lab_dir / "setup.sh")
        assert refused.returncode == 2
        assert "172.16.0.0/16 overlaps the route 172.16.5.0/24 (use --force" in refused.stderr
        assert leftovers(prefix) == {blocker, peer}
        run("ip", "addr", "add", "172.16.200.1/16", "dev", blocker, check=True)  # the lab's very subnet: inside and around it
        twice = run("bash", lab_dir / "setup.sh")
        assert twice.returncode == 2 and twice.stderr.count("overlaps the route 172.16.0.0/16") == 1, twice.stderr
        forced = run("bash", lab_dir / "setup.sh", "--force")
        assert forced.returncode == 0, forced.stderr
        assert run("bash", lab_dir / "teardown.sh").returncode == 0
    finally:
        run("ip", "link", "del", blocker)
    assert leftovers(prefix) == set()


def test_unknown_option_is_refused(tmp_path: Path, prefix: str) -> None:
    lab_dir = _render(tmp_path, "pair", prefix, "batched")
    result = run("bash", lab_dir / "setup.sh", "--fast")
    assert result.returncode == 2 and "unknown option '--fast'" in result.stderr
    assert leftovers(prefix) == set()


HOSTILE = st.sampled_from(
    ["'", '"', "$(touch CANARY)", "`touch CANARY`", "; touch CANARY", "\n", "-rf", "--help", "é", "🙂", "a" * 300,
     "%eth0", "\\", "${HOME}", "*", "#", "\t", "|", "&&", "\x00", "\x7f", " "]
)
hostile_text = st.lists(st.one_of(HOSTILE, st.text(max_size=5)), min_size=1, max_size=4).map("".join)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(["name", "description", "namespace", "alias", "interface", "address", "route", "prefix"]),
       value=hostile_text)
def test_hostile_values_are_refused_or_harmless(tmp_path_factory: pytest.TempPathFactory, field: str, value: str) -> None:
    work = tmp_path_factory.mktemp("hostile")
    document = presets.pair()
    ns0 = document["namespaces"]["ns-0"]
    prefix = f"h{uuid.uuid4().hex[:5]}-"
    if field == "name":
        document["name"] = value
    elif field == "description":
        document["description"] = value
    elif field == "namespace":
        document["namespaces"][value] = document["namespaces"].pop("ns-1")
        document["links"][0][1] = f"{value}:veth-1"
    elif field == "alias":
        ns0["alias"] = value
    elif field == "interface":
        ns0["interfaces"] = {value: ns0["interfaces"]["veth-0"]}
        document["links"][0][0] = f"ns-0:{value}"
    elif field == "address":
        ns0["interfaces"]["veth-0"]["addresses"] = [value]
    elif field == "route":
        ns0["routes"] = [{"to": value, "dev": "veth-0"}]
    else:
        prefix = value
    try:
        loaded = sources.from_document(document, "hostile.yaml", "hostile.yaml", prefix)
    except TopologyError as error:
        assert error.problems and all("\n" not in str(p) and str(p).startswith("hostile.yaml") for p in error.problems)
        return
    lab_dir = work / "lab"
    writing.write(lab_files.render(loaded), lab_dir)
    scripts = [lab_dir / name for name in ("setup.sh", "teardown.sh", "verify.sh", "helpers.sh")]
    assert shellcheck(*scripts).returncode == 0
    for script in scripts[:3]:
        dry = run("bash", script.name, "--dry-run", cwd=lab_dir)
        assert dry.returncode == 0, dry.stderr
        for line in dry.stdout.splitlines():
            assert line.startswith(("ip ", "nsenter --net=/run/netns/", "    ", "lab ", "dry run", "next: ", "progress: ")), line
    assert not (lab_dir / "CANARY").exists() and not Path("CANARY").exists()
    lab_names = {ns.netns for ns in loaded.lab.namespaces} | set(loaded.lab.root_devices)
    assert not lab_names & (netns_names() | root_link_names())  # a dry run made none of them


@pytest.mark.kernel
def test_teardown_and_apply_stop_what_runs_in_the_lab_first(tmp_path: Path, prefix: str) -> None:
    """A process left in two namespaces of a bridge lab (one ignores TERM) is named, stopped, and the
    lab goes whole; apply that removes a namespace stops what runs there too; a dry run only names."""
    lab_dir = _render(tmp_path, "bridge", prefix, "batched", 3)
    assert run("bash", lab_dir / "setup.sh").returncode == 0
    started = []
    try:
        for ns, script in (("ns-0", "exec sleep 600"), ("ns-1", "trap '' TERM; sleep 600 & wait")):
            started.append(subprocess.Popen(["ip", "netns", "exec", f"{prefix}{ns}", "bash", "-c", script]))
        time.sleep(0.3)
        dry = run("bash", lab_dir / "teardown.sh", "--dry-run")
        assert f"dry run: would stop {started[0].pid} (sleep) in {prefix}ns-0" in dry.stdout, dry.stdout
        down = run("bash", lab_dir / "teardown.sh")
        assert down.returncode == 0, down.stdout + down.stderr
        assert f"stopping what still runs in the lab: {started[0].pid} (sleep) in {prefix}ns-0" in down.stdout
        assert f"{started[0].pid} (sleep) in {prefix}ns-0, {started[1].pid} (bash) in {prefix}ns-1, " in down.stdout
        assert leftovers(prefix) == set()
        assert [p.wait(timeout=5) for p in started] == [-signal.SIGTERM, -signal.SIGKILL]
        # apply: ns-2 goes, with what runs in it
        assert run("bash", lab_dir / "setup.sh").returncode == 0
        smaller = _render(tmp_path / "smaller", "bridge", prefix, "batched", 2)
        started = [subprocess.Popen(["ip", "netns", "exec", f"{prefix}ns-2", "sleep", "600"])]
        time.sleep(0.3)
        plan = nsgen("plan", smaller / "topology.yaml", "-o", tmp_path / "change")
        assert plan.returncode == 0, plan.stderr
        assert f"stop_processes {prefix}ns-2" in (tmp_path / "change" / "apply.sh").read_text()
        applied = run("bash", tmp_path / "change" / "apply.sh")
        assert applied.returncode == 0, applied.stdout + applied.stderr
        assert started[0].wait(timeout=5) == -signal.SIGTERM and f"{prefix}ns-2" not in netns_names()
    finally:
        for process in started:
            process.kill()
        run("bash", lab_dir / "teardown.sh")
    assert leftovers(prefix) == set()


#: A routed dual-stack lab on veths alone: two LANs, a router between them.
TWO_LANS = {
    "name": "twolan",
    "namespaces": {
        "router": {
            "sysctls": {"net.ipv4.ip_forward": 1, "net.ipv6.conf.all.forwarding": 1},
            "interfaces": {"lan1": {"addresses": ["10.1.0.1/24", "fd01::1/64"]}, "lan2": {"addresses": ["10.2.0.1/24", "fd02::1/64"]}},
        },
        **{
            f"pc{n}": {
                "interfaces": {"eth0": {"addresses": [f"10.{n}.0.11/24", f"fd0{n}::11/64"]}},
                "routes": [{"to": "default", "via": f"10.{n}.0.1"}, {"to": "::/0", "via": f"fd0{n}::1"}],
            }
            for n in (1, 2)
        },
    },
    "links": [["router:lan1", "pc1:eth0"], ["router:lan2", "pc2:eth0"]],
}


@pytest.mark.kernel
@pytest.mark.parametrize("lab", ["router preset (bridges)", "two LANs (veths)"])
def test_a_routed_dual_stack_lab_verifies_straight_after_setup_twenty_times(tmp_path: Path, prefix: str, lab: str) -> None:
    """setup.sh returns when the lab is usable (its IPv6 addresses are added `nodad`: never tentative):
    verify.sh right after it passes, every time."""
    if lab.startswith("router"):
        lab_dir = _render(tmp_path, "router", prefix, "batched", 2)
    else:
        lab_dir = tmp_path / "twolan"
        writing.write(lab_files.render(sources.from_document(TWO_LANS, "twolan.yaml", "twolan.yaml", prefix)), lab_dir)
    failures = []
    try:
        for cycle in range(20):
            setup = run("bash", lab_dir / "setup.sh")
            assert setup.returncode == 0, setup.stderr
            verify = run("bash", lab_dir / "verify.sh")
            if verify.returncode != 0:
                failures.append((cycle, [line for line in verify.stdout.splitlines() if line.startswith("FAIL")]))
            assert run("bash", lab_dir / "teardown.sh").returncode == 0
    finally:
        run("bash", lab_dir / "teardown.sh")
    assert not failures, failures
    assert leftovers(prefix) == set()


@pytest.mark.kernel
def test_ctrl_c_on_nsgen_verify_is_never_a_pass(prefix: str) -> None:
    """A terminal's Ctrl-C (SIGINT to the whole process group) at any moment of a verify: it says so and
    exits 130, or it had finished (its summary printed); never 0 for a run cut short."""
    lab = ["--preset", "bridge", "-n", "30", "--prefix", prefix]
    assert nsgen("up", *lab).returncode == 0
    try:
        cut = 0
        for delay in (0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7):
            argv = [sys.executable, "-m", "nsgen", "verify", *lab]
            verify = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
            time.sleep(delay)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(verify.pid, signal.SIGINT)
            out, err = verify.communicate(timeout=60)
            # 130, or killed by the SIGINT itself (-2: a shell says 130), where it came as Python exited
            if "lab bridge: " in out and " passed, 0 failed" in out:
                assert verify.returncode in (0, 130, -signal.SIGINT), (delay, out[-300:], err)
                continue
            assert verify.returncode in (130, -signal.SIGINT), (delay, verify.returncode, out[-300:], err)
            cut += 1
        assert cut >= 4  # most of the runs were cut short
    finally:
        nsgen("down", *lab)
    assert leftovers(prefix) == set()
