"""A bridge keeps its own MAC, for real: without one, a Linux bridge takes its lowest port's MAC and
changes it as ports come and go, and the namespaces behind it lose their gateway for about 30 s (their
neighbour entry keeps the old MAC). Every bridge a lab makes gets a MAC of its own (derived from the
lab's key and the bridge's name, or its declared `mac:`), so an apply that adds a port, even one whose
MAC is lower than every other's, leaves the gateway's traffic alone."""

from pathlib import Path

import pytest
from conftest import ip_json, run

from nsgen.render import lab_files, writing
from nsgen.topology.model import stable_mac
from nsgen.validate import sources


def _lab(count: int) -> dict:
    """A bridge with the gateway's address and `count` namespaces behind it."""
    return {
        "name": "gw",
        "bridges": {"lan": {"addresses": ["10.236.0.1/24"]}},
        "namespaces": {
            f"n{i}": {"interfaces": {"eth0": {"addresses": [f"10.236.0.{10 + i}/24"]}}, "routes": [{"to": "default", "via": "10.236.0.1"}]}
            for i in range(count)
        },
        "links": [[f"n{i}:eth0", f"lan:p{i}"] for i in range(count)],
    }


def _ping_gateway(netns: str) -> bool:
    return run("ip", "netns", "exec", netns, "ping", "-c", "1", "-W", "1", "10.236.0.1").returncode == 0


@pytest.mark.kernel
def test_apply_adding_a_port_leaves_the_gateways_mac_and_traffic_alone(prefix: str, tmp_path: Path) -> None:
    old, new = (sources.from_document(_lab(count), "gw", "gw", prefix) for count in (2, 3))
    writing.write(lab_files.render(old), tmp_path / "old")
    assert run("bash", tmp_path / "old" / "setup.sh").returncode == 0
    bridge = f"{prefix}lan"
    try:
        mac = stable_mac(f"{prefix}gw", "lan")
        assert ip_json("link", "show", "dev", bridge)[0]["address"] == mac
        assert Path(f"/sys/class/net/{bridge}/addr_assign_type").read_text().strip() == "3"  # set, not its ports'
        assert _ping_gateway(f"{prefix}n0")  # n0's neighbour entry now holds the gateway's MAC
        writing.write(lab_files.render_apply(old.lab, new), tmp_path / "change")
        applied = run("bash", tmp_path / "change" / "apply.sh")
        assert applied.returncode == 0, applied.stderr
        # the new port takes the lowest MAC on the bridge: a bridge without its own would take it
        run("ip", "link", "set", "dev", f"{prefix}p2", "address", "02:00:00:00:00:01", check=True)
        assert ip_json("link", "show", "dev", bridge)[0]["address"] == mac
        assert _ping_gateway(f"{prefix}n0") and _ping_gateway(f"{prefix}n2")
        neighbour = ip_json("neigh", "show", "10.236.0.1", netns=f"{prefix}n0")
        assert [entry["lladdr"] for entry in neighbour] == [mac]
    finally:
        for lab in ("change", "old"):  # the lab as it is, then as it was (either may be what runs)
            if (tmp_path / lab / "teardown.sh").exists():
                run("bash", tmp_path / lab / "teardown.sh")


def test_a_declared_mac_is_the_bridges_and_two_prefixes_get_two_macs() -> None:
    declared = {**_lab(1), "bridges": {"lan": {"addresses": ["10.236.0.1/24"], "mac": "02:AA:00:00:00:01"}}}
    assert sources.from_document(declared, "gw", "gw").lab.bridges[0].mac == "02:aa:00:00:00:01"
    first, second = (sources.from_document(_lab(1), "gw", "gw", p).lab.bridges[0].mac for p in ("a-", "b-"))
    assert first != second and int(first[:2], 16) & 0b11 == 0b10  # locally administered, unicast
    assert sources.from_document(_lab(1), "gw", "gw", "a-").lab.bridges[0].mac == first  # stable
