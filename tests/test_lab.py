"""The pair lab built for real: kernel state after setup, pings, teardown, re-runs and failures."""

import shutil
import tempfile
from pathlib import Path

import faults
import pytest
import yaml
from conftest import REPO, ip_json, leftovers, netns_names, nsgen, run

from nsgen.render import lab_files, writing
from nsgen.validate import sources

pytestmark = pytest.mark.kernel


def test_setup_builds_the_guides_part_one_lab(pair_dir: Path, prefix: str) -> None:
    setup = run("bash", pair_dir / "setup.sh")
    assert setup.returncode == 0, setup.stderr
    assert {f"{prefix}ns-0", f"{prefix}ns-1"} <= netns_names()
    for index, peer in ((0, 1), (1, 0)):
        netns = f"{prefix}ns-{index}"
        links = {link["ifname"]: link for link in ip_json("link", "show", netns=netns)}
        assert set(links) == {"lo", f"veth-{index}"}
        veth = links[f"veth-{index}"]
        assert veth["operstate"] == "UP" and veth["link_netnsid"] is not None
        addresses = [
            (info["local"], info["prefixlen"])
            for entry in ip_json("addr", "show", "dev", f"veth-{index}", netns=netns)
            for info in entry["addr_info"]
            if info["family"] == "inet"
        ]
        assert addresses == [(f"172.16.0.{index + 2}", 32)]
        routes = [(r["dst"], r["dev"]) for r in ip_json("route", "show", netns=netns)]
        assert routes == [("172.16.0.0/16", f"veth-{index}")]
        assert f"veth-{peer}" not in links  # the peer end lives in the other namespace
    assert not {"veth-0", "veth-1"} & {link["ifname"] for link in ip_json("link", "show")}

    verify = run("bash", pair_dir / "verify.sh")
    assert verify.returncode == 0, verify.stdout
    assert "ok    ns-0 -> 172.16.0.3 (ns-1:veth-1)" in verify.stdout
    assert "ok    ns-1 -> 172.16.0.2 (ns-0:veth-0)" in verify.stdout

    shown = run("bash", "-c", "source ./helpers.sh && displayLinks && displayAddr && displayRoutes", cwd=pair_dir)
    assert shown.returncode == 0, shown.stderr
    assert f"--- netns {prefix}ns-0 ---" in shown.stdout and f"--- netns {prefix}ns-1 ---" in shown.stdout
    assert "veth-0@" in shown.stdout and "veth-1@" in shown.stdout
    assert "inet 172.16.0.2/32" in shown.stdout and "172.16.0.0/16 dev veth-1" in shown.stdout

    assert Path(f"/run/nsgen-{prefix}pair.lock").exists()  # the lab's lock, while it is up
    teardown = run("bash", pair_dir / "teardown.sh")
    assert teardown.returncode == 0, teardown.stderr
    assert leftovers(prefix) == set() and not Path(f"/run/nsgen-{prefix}pair.lock").exists()


def test_each_script_runs_copied_alone(pair_dir: Path, tmp_path: Path, prefix: str) -> None:
    for script in ("setup.sh", "verify.sh", "teardown.sh"):
        alone = tmp_path / f"alone-{script}"
        alone.mkdir()
        shutil.copy(pair_dir / script, alone / script)
        result = run("bash", f"./{script}", cwd=alone)
        assert result.returncode == 0, (script, result.stdout, result.stderr)
        assert sorted(p.name for p in alone.iterdir()) == [script]
    assert leftovers(prefix) == set()


def test_verify_fails_when_the_lab_is_broken_or_down(pair_dir: Path, prefix: str) -> None:
    down = run("bash", pair_dir / "verify.sh")
    assert down.returncode == 1 and f"missing namespace {prefix}ns-0 namespace {prefix}ns-1 (run setup.sh)" in down.stdout
    assert run("bash", pair_dir / "setup.sh").returncode == 0
    run("ip", "-n", f"{prefix}ns-1", "route", "del", "172.16.0.0/16", check=True)
    broken = run("bash", pair_dir / "verify.sh")
    assert broken.returncode == 1
    assert "FAIL  ns-0 -> 172.16.0.3 (ns-1:veth-1)" in broken.stdout  # the reply has no route back
    assert "0 passed, 2 failed" in broken.stdout
    run("ip", "netns", "del", f"{prefix}ns-1", check=True)  # partly there: setup.sh would refuse it
    half = run("bash", pair_dir / "verify.sh")
    assert f"missing namespace {prefix}ns-1 (nsgen apply puts them back; or teardown.sh, then setup.sh)" in half.stdout
    assert run("bash", pair_dir / "teardown.sh").returncode == 0
    assert leftovers(prefix) == set()


def test_setup_and_teardown_are_idempotent(pair_dir: Path, prefix: str) -> None:
    assert run("bash", pair_dir / "setup.sh").returncode == 0
    again = run("bash", pair_dir / "setup.sh")
    assert again.returncode == 0 and "already up: nothing to do" in again.stdout
    assert run("bash", pair_dir / "verify.sh").returncode == 0  # the second run changed nothing
    run("ip", "netns", "del", f"{prefix}ns-0", check=True)  # half the lab deleted by hand
    refused = run("bash", pair_dir / "setup.sh")
    assert refused.returncode == 2 and f"partly there, or its names are taken: namespace {prefix}ns-1 (another lab's, running? ls /run/nsgen; else run teardown.sh first)" in refused.stderr
    partial = run("bash", pair_dir / "teardown.sh")
    assert partial.returncode == 0 and "deleted 1 namespace(s)" in partial.stdout
    twice = run("bash", pair_dir / "teardown.sh")
    assert twice.returncode == 0 and "nothing to delete" in twice.stdout
    assert leftovers(prefix) == set()


def test_a_failing_step_removes_what_setup_created(tutorial_pair_dir: Path, tmp_path: Path, prefix: str) -> None:
    counted = run("bash", tutorial_pair_dir / "setup.sh", env=faults.environment(tmp_path, 0, ":"))
    assert counted.returncode == 0 and faults.steps_run(tmp_path) == 13  # 11 commands, and lo up twice
    assert run("bash", tutorial_pair_dir / "teardown.sh").returncode == 0
    # Right before `ip1 addr add`, ns-1 disappears: the step fails for real, in the kernel.
    env = faults.environment(tmp_path, 5, f"command ip netns del {prefix}ns-1")
    result = run("bash", tutorial_pair_dir / "setup.sh", env=env)
    assert result.returncode == 1  # a failed step (ip's own status is 2, which is a refusal's)
    assert "setup.sh: failed at line " in result.stderr
    assert ": ip1 addr add 172.16.0.3 dev veth-1\n" in result.stderr
    assert leftovers(prefix) == set() and not Path(f"/run/nsgen-{prefix}pair.lock").exists()  # nothing up: no lock left


def test_a_signal_during_setup_removes_what_it_created(tutorial_pair_dir: Path, tmp_path: Path, prefix: str) -> None:
    result = run("bash", tutorial_pair_dir / "setup.sh", env=faults.environment(tmp_path, 4, "kill -TERM $$"))
    assert result.returncode == 143
    assert "setup.sh: terminated at line" in result.stderr
    assert leftovers(prefix) == set()


def test_a_user_without_root_or_sudo_gets_one_clear_line(pair_dir: Path, tmp_path: Path, prefix: str) -> None:
    public = Path(tempfile.mkdtemp(prefix="nsgen-noroot-"))
    try:
        (public / "bin").mkdir()
        for tool in ("bash", "ip"):  # a PATH with no sudo on it
            (public / "bin" / tool).symlink_to(shutil.which(tool))
        shutil.copy(pair_dir / "setup.sh", public / "setup.sh")
        public.chmod(0o755)
        (public / "setup.sh").chmod(0o755)
        result = run("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "env", f"PATH={public / 'bin'}",
                     "bash", public / "setup.sh")
        assert result.returncode == 1
        assert result.stderr == "setup.sh: must run as root, and sudo was not found\n"
        dry = run("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "env", f"PATH={public / 'bin'}",
                  "bash", public / "setup.sh", "--dry-run")
        assert dry.returncode == 0 and f"netns add {prefix}ns-0" in dry.stdout  # a dry run needs no root
    finally:
        shutil.rmtree(public)
    assert leftovers(prefix) == set()


@pytest.mark.kernel
def test_up_names_what_works_next_loopback_answers_and_another_topology_is_for_apply(tmp_path: Path, prefix: str) -> None:
    """After `nsgen up` (its scripts gone), the next commands are nsgen's; lo answers in every lab
    namespace; `nsgen up` of a changed topology says the lab runs another one and apply changes it."""
    up = nsgen("up", "--preset", "pair", "--prefix", prefix)
    try:
        assert up.returncode == 0, up.stderr
        lab = f"--preset pair --prefix {prefix}"
        assert f"next: nsgen verify {lab}; nsgen status {lab}; nsgen down {lab}\n" in up.stdout
        for ns in ("ns-0", "ns-1"):
            assert run("ip", "netns", "exec", f"{prefix}{ns}", "ping", "-c", "1", "-W", "1", "127.0.0.1").returncode == 0
        changed = tmp_path / "pair.yaml"
        document = yaml.safe_load((REPO / "generated" / "pair" / "topology.yaml").read_text())
        document["namespaces"]["ns-1"]["interfaces"]["veth-1"]["addresses"] = ["172.16.0.9"]
        changed.write_text(yaml.safe_dump(document))
        other = nsgen("up", changed, "--prefix", prefix)
        assert other.returncode == 2
        said = f"lab {prefix}pair is already up from another topology (the record /run/nsgen/{prefix}pair.yaml): nothing was made"
        assert said in other.stderr and f"nsgen apply {changed} --prefix {prefix} changes it" in other.stderr
        assert nsgen("verify", "--prefix", prefix).returncode == 0  # the lab that runs, found by its record
    finally:
        assert nsgen("down", "--preset", "pair", "--prefix", prefix).returncode == 0
    assert leftovers(prefix) == set()


def test_a_relative_workdir_works_for_up_verify_and_down(tmp_path: Path, prefix: str) -> None:
    try:
        for verb in ("up", "verify", "down"):
            result = nsgen(verb, "--preset", "pair", "--prefix", prefix, "--workdir", "wd", cwd=tmp_path)
            assert result.returncode == 0, (verb, result.stdout + result.stderr)
        assert (tmp_path / "wd" / "setup.sh").is_file() and (tmp_path / "wd" / ".nsgen-manifest").is_file()
    finally:
        nsgen("down", "--preset", "pair", "--prefix", prefix)
    assert leftovers(prefix) == set()


def test_a_large_lab_partly_there_is_named_in_a_few_words(tmp_path: Path, prefix: str) -> None:
    lab_dir = tmp_path / "mesh"
    writing.write(lab_files.render(sources.load(preset="bridge", prefix=prefix, count=8)), lab_dir)
    for index in range(7):  # seven of eight namespaces taken
        run("ip", "netns", "add", f"{prefix}ns-{index}", check=True)
    taken = ", ".join(f"namespace {prefix}ns-{i}" for i in range(5)).replace(",", "") + " and 2 more"
    setup = run("bash", lab_dir / "setup.sh")
    assert setup.returncode == 2 and f"its names are taken: {taken} (another lab's" in setup.stderr
    demo = run("bash", lab_dir / "demo.sh")
    assert demo.returncode == 2 and f"lab bridge is already there: {taken} (run teardown.sh first)" in demo.stderr
    down = run("bash", lab_dir / "verify.sh")
    missing = f"namespace {prefix}ns-7 device {prefix}v-net-0 " + " ".join(f"device {prefix}veth-{i}" for i in range(3))
    assert down.returncode == 1 and f"FAIL  lab bridge: missing {missing} and 5 more (nsgen apply" in down.stdout
    for index in range(7):
        run("ip", "netns", "del", f"{prefix}ns-{index}", check=True)
    assert leftovers(prefix) == set()
