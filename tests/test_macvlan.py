"""Macvlan ends, for real: `[NS:IF, macvlan:PARENT]` makes NS's interface a macvlan of a root-namespace
device the lab does not own. The test makes that parent itself (a veth whose peer sits in a namespace
of its own, playing the machine's network): the lab's macvlans reach each other and that network, the
lab's drift is named and repaired like any link's, teardown removes the macvlans, and the parent is
left as it was. A parent that is not there stops setup before anything is made."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ip_json, leftovers, netns_names, nsgen, run

from nsgen.render import lab_files, writing
from nsgen.validate import sources

pytestmark = pytest.mark.kernel


@pytest.fixture
def parent(prefix: str) -> Iterator[str]:
    """A root-namespace device the lab does not own: a veth whose peer, in a namespace of its own, holds
    10.238.0.9/24 (named by the prefix's stem, so that the prefix fixture deletes them, but not the lab's)."""
    device, far = f"{prefix[:-1]}xpar", f"{prefix[:-1]}x-far"
    run("ip", "netns", "add", far, check=True)
    run("ip", "link", "add", device, "type", "veth", "peer", "name", "eth0", "netns", far, check=True)
    run("ip", "link", "set", device, "up", check=True)
    run("ip", "-n", far, "addr", "add", "10.238.0.9/24", "dev", "eth0", check=True)
    run("ip", "-n", far, "link", "set", "eth0", "up", check=True)
    yield device
    run("ip", "netns", "del", far)


def _lab(parent: str) -> dict:
    return {
        "name": "mv",
        "namespaces": {
            "a": {"interfaces": {"m0": {"addresses": ["10.238.0.2/24"]}, "e0": {"addresses": ["10.239.0.1/30"]}}},
            "b": {"interfaces": {"m0": {"addresses": ["10.238.0.3/24"], "mac": "02:00:00:00:38:03"}}},
            "c": {"interfaces": {"e0": {"addresses": ["10.239.0.2/30"]}}},
        },
        "links": [["a:m0", f"macvlan:{parent}"], ["b:m0", f"macvlan:{parent}"], ["a:e0", "c:e0"]],
    }


def _parent_state(device: str) -> dict:
    (link,) = ip_json("addr", "show", "dev", device)
    addresses = sorted(f"{a['local']}/{a['prefixlen']}" for a in link["addr_info"])
    return {"addresses": addresses, **{key: link.get(key) for key in ("ifindex", "flags", "mtu", "address", "master")}}


def test_macvlans_reach_their_parents_network_and_leave_the_parent_alone(parent: str, prefix: str, tmp_path: Path) -> None:
    before = _parent_state(parent)
    topology = tmp_path / "mv.yaml"
    writing.write(lab_files.render(sources.from_document(_lab(parent), "mv.yaml", "mv.yaml", prefix)), tmp_path / "lab")
    topology.write_text((tmp_path / "lab" / "topology.yaml").read_text())
    setup = run("bash", tmp_path / "lab" / "setup.sh")
    assert setup.returncode == 0, setup.stderr
    try:
        links = {link["ifname"]: link for link in ip_json("-d", "link", "show", netns=f"{prefix}b")}
        assert links["m0"]["linkinfo"]["info_kind"] == "macvlan" and links["m0"]["linkinfo"]["info_data"]["mode"] == "bridge"
        assert links["m0"]["address"] == "02:00:00:00:38:03"
        verify = run("bash", tmp_path / "lab" / "verify.sh")
        assert verify.returncode == 0 and "ok    a -> 10.238.0.3 (b:m0)" in verify.stdout, verify.stdout
        assert run("ip", "netns", "exec", f"{prefix}b", "ping", "-c", "1", "-W", "2", "10.238.0.9").returncode == 0
        assert nsgen("status", topology, "--prefix", prefix).returncode == 0
        run("ip", "-n", f"{prefix}a", "link", "del", "m0", check=True)
        status = nsgen("status", topology, "--prefix", prefix)
        assert status.returncode == 1 and status.stdout.splitlines()[0] == "a: device m0: missing", status.stdout
        applied = nsgen("apply", topology, "--prefix", prefix)
        assert applied.returncode == 0, applied.stdout + applied.stderr
        assert nsgen("status", topology, "--prefix", prefix).returncode == 0
        assert run("ip", "netns", "exec", f"{prefix}a", "ping", "-c", "1", "-W", "2", "10.238.0.9").returncode == 0
        assert _parent_state(parent) == before
    finally:
        assert nsgen("down", topology, "--prefix", prefix).returncode == 0
    assert _parent_state(parent) == before
    assert {f"{prefix}a", f"{prefix}b", f"{prefix}c"} & netns_names() == set()


def test_a_parent_that_is_not_there_stops_setup_before_anything_is_made(prefix: str, tmp_path: Path) -> None:
    writing.write(lab_files.render(sources.from_document(_lab(f"{prefix}none"), "mv", "mv", prefix)), tmp_path)
    setup = run("bash", tmp_path / "setup.sh")
    assert setup.returncode != 0
    assert setup.stderr.splitlines() == [f"setup.sh: macvlan parent '{prefix}none' is no device of this machine: nothing was made"]
    assert leftovers(prefix[:-1]) == set()
