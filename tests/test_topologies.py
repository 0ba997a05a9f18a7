"""Bridges, meshes, routers, the root namespace, IPv6, auto-addressing, reachability, status and graphs."""

from pathlib import Path

import pytest
import yaml
from conftest import ip_json, leftovers, nsgen, render_document, run

from nsgen.plan import reachability
from nsgen.render import lab_files, writing
from nsgen.topology import presets, yaml_file
from nsgen.validate import sources

GOLDEN = Path(__file__).parent / "golden"


def _up_verify_down(lab_dir: Path, prefix: str) -> str:
    """Set the lab up, verify it, tear it down; return verify's output. Nothing may remain."""
    setup = run("bash", lab_dir / "setup.sh")
    assert setup.returncode == 0, setup.stderr
    verify = run("bash", lab_dir / "verify.sh")
    teardown = run("bash", lab_dir / "teardown.sh")
    assert teardown.returncode == 0, teardown.stderr
    assert leftovers(prefix) == set()
    assert verify.returncode == 0, verify.stdout
    return verify.stdout


def _render_preset(tmp_path: Path, name: str, count: int | None, prefix: str) -> tuple[Path, int]:
    loaded = sources.load(preset=name, prefix=prefix, count=count)
    lab_dir = tmp_path / f"{name}-{count}"
    writing.write(lab_files.render(loaded), lab_dir)
    return lab_dir, len(reachability.checks(loaded.lab))


@pytest.mark.parametrize(
    ("name", "count"),
    [("bridge", 2), ("bridge", 5), ("mesh", 3), ("mesh", 5), ("router", 1), ("router", 3), ("host", None)],
)
@pytest.mark.kernel
def test_preset_end_to_end(tmp_path: Path, prefix: str, name: str, count: int | None) -> None:
    lab_dir, expected = _render_preset(tmp_path, name, count, prefix)
    assert expected > 0
    out = _up_verify_down(lab_dir, prefix)
    assert f"{expected} passed, 0 failed" in out


@pytest.mark.kernel
def test_bridge_kernel_state(tmp_path: Path, prefix: str) -> None:
    lab_dir, _ = _render_preset(tmp_path, "bridge", 4, prefix)
    assert run("bash", lab_dir / "setup.sh").returncode == 0
    try:
        bridge = f"{prefix}v-net-0"
        ports = {link["ifname"] for link in ip_json("link", "show", "master", bridge)}
        assert ports == {f"{prefix}veth-{i}" for i in range(4)}
        (info,) = ip_json("addr", "show", "dev", bridge)
        assert [(a["local"], a["prefixlen"]) for a in info["addr_info"] if a["family"] == "inet"] == [("172.16.0.1", 16)]
        routes = ip_json("route", "show", "default", netns=f"{prefix}ns-3")
        assert [(r["gateway"], r["dev"]) for r in routes] == [("172.16.0.1", "eth0")]
        addresses = ip_json("addr", "show", "dev", "eth0", netns=f"{prefix}ns-3")[0]["addr_info"]
        assert ("172.16.0.5", 16) in [(a["local"], a["prefixlen"]) for a in addresses]  # .1 gateway, then .2 .3 .4 .5
    finally:
        assert run("bash", lab_dir / "teardown.sh").returncode == 0
    assert leftovers(prefix) == set()


@pytest.mark.kernel
def test_mesh_has_n_n_minus_1_over_2_veth_pairs_in_the_kernel(tmp_path: Path, prefix: str) -> None:
    n = 5
    lab_dir, _ = _render_preset(tmp_path, "mesh", n, prefix)
    assert run("bash", lab_dir / "setup.sh").returncode == 0
    try:
        veths = sum(len(ip_json("link", "show", "type", "veth", netns=f"{prefix}ns-{i}")) for i in range(n))
        assert veths == n * (n - 1)  # two ends per pair
        assert veths // 2 == n * (n - 1) // 2 == 10
    finally:
        assert run("bash", lab_dir / "teardown.sh").returncode == 0
    assert "n(n-1)/2 = 10 veth pairs" in (lab_dir / "README.md").read_text()
    assert leftovers(prefix) == set()


@pytest.mark.kernel
def test_ipv6_reachability_through_the_router(tmp_path: Path, prefix: str) -> None:
    lab_dir, _ = _render_preset(tmp_path, "router", 1, prefix)
    out = _up_verify_down(lab_dir, prefix)
    assert "ok    left-0 -> fd00:2::2 (right-0:eth0)" in out
    assert "ok    right-0 -> 10.0.1.2 (left-0:eth0)" in out
    assert "-6 -c 1" not in out


@pytest.mark.kernel
def test_a_wrong_route_makes_verify_fail(tmp_path: Path, prefix: str) -> None:
    document = presets.pair()
    document["namespaces"]["ns-1"]["routes"] = [{"to": "172.17.0.0/16", "dev": "veth-1"}]  # a typo: 17, not 16
    lab_dir = render_document(document, tmp_path, prefix)
    assert run("bash", lab_dir / "setup.sh").returncode == 0
    try:
        verify = run("bash", lab_dir / "verify.sh")
        assert verify.returncode == 1
        assert "FAIL  ns-0 -> 172.16.0.3 (ns-1:veth-1)" in verify.stdout
    finally:
        assert run("bash", lab_dir / "teardown.sh").returncode == 0
    assert leftovers(prefix) == set()


def _isolated_pair() -> dict:
    """Two links that share no namespace with forwarding: a reaches b, and must not reach c."""
    return {
        "name": "isolated",
        "namespaces": {"a": None, "b": None, "c": None},
        "links": [
            {"endpoints": ["a:e0", "b:e0"], "subnet": "10.60.1.0/30"},
            {"endpoints": ["b:e1", "c:e0"], "subnet": "10.60.2.0/30"},
        ],
    }


@pytest.mark.kernel
def test_expect_unreachable_holds_and_is_really_checked(tmp_path: Path, prefix: str) -> None:
    document = _isolated_pair()
    document["expect"] = [{"from": "a", "to": "10.60.2.2", "reachable": False}]  # c, behind b: b does not forward
    out = _up_verify_down(render_document(document, tmp_path / "holds", prefix), prefix)
    assert "ok    a -> 10.60.2.2 (expect: unreachable)" in out
    # The same negative check against an address a does reach fails verify: the check is real.
    document["expect"] = [{"from": "a", "to": "10.60.1.2", "reachable": False}]
    lab_dir = render_document(document, tmp_path / "fails", prefix)
    assert run("bash", lab_dir / "setup.sh").returncode == 0
    try:
        verify = run("bash", lab_dir / "verify.sh")
        assert verify.returncode == 1 and "FAIL  a -> 10.60.1.2 (expect: unreachable)" in verify.stdout
    finally:
        assert run("bash", lab_dir / "teardown.sh").returncode == 0
    assert leftovers(prefix) == set()


@pytest.mark.kernel
def test_two_copies_of_bridge_side_by_side(tmp_path: Path, prefix: str) -> None:
    first, second = prefix, prefix[:-1] + "b-"
    # Both gateways live in the root namespace, so the second copy moves to a subnet of its own.
    moved = yaml.safe_load(yaml.safe_dump(presets.bridge(3)).replace("172.16.0.", "172.18.0.").replace("172.16.0.0/16", "172.18.0.0/16"))
    moved["bridges"]["v-net-0"] = {"addresses": ["172.18.0.1/16"], "subnet": "172.18.0.0/16"}
    dirs = [_render_preset(tmp_path / first, "bridge", 3, first)[0], render_document(moved, tmp_path / second, second)]
    try:
        for lab_dir in dirs:
            assert run("bash", lab_dir / "setup.sh").returncode == 0
        for lab_dir in dirs:
            verify = run("bash", lab_dir / "verify.sh")
            assert verify.returncode == 0, verify.stdout
    finally:
        for lab_dir in dirs:
            assert run("bash", lab_dir / "teardown.sh").returncode == 0
        for p in (first, second):
            for name in sorted(leftovers(p)):
                run("ip", "netns", "del", name)
                run("ip", "link", "del", name)
    assert leftovers(first) == leftovers(second) == set()


@pytest.mark.parametrize("case", sorted(GOLDEN.glob("*.yaml")), ids=lambda p: p.stem)
def test_auto_addressing_golden(case: Path) -> None:
    lab = sources.load(case).lab
    normalised = yaml_file.dump(yaml_file.document(lab))
    assert normalised == case.with_suffix(".normalised").read_text()


@pytest.mark.kernel
def test_status_reports_missing_namespace_and_exit_code(tmp_path: Path, prefix: str) -> None:
    assert nsgen("status", "--preset", "bridge", "--prefix", prefix).returncode == 1
    assert nsgen("up", "--preset", "bridge", "--prefix", prefix).returncode == 0
    try:
        up = nsgen("status", "--preset", "bridge", "--prefix", prefix)
        assert up.returncode == 0 and "lab is fully up" in up.stdout, up.stdout
        run("ip", "netns", "del", f"{prefix}ns-1", check=True)
        run("ip", "link", "add", f"{prefix}stray", "type", "veth", "peer", f"{prefix}stray2", check=True)
        partial = nsgen("status", "--preset", "bridge", "--prefix", prefix)
        assert partial.returncode == 1
        lines = partial.stdout.splitlines()
        assert "ns-1: namespace: missing" in lines, partial.stdout
        assert f"host: device {prefix}stray: extra" in lines, partial.stdout
        assert not any(line.startswith("ns-0:") for line in lines), partial.stdout
    finally:
        run("ip", "link", "del", f"{prefix}stray")
        assert nsgen("down", "--preset", "bridge", "--prefix", prefix).returncode == 0
    assert leftovers(prefix) == set()


def test_graph_formats_and_readme_embeds_mermaid() -> None:
    mermaid = nsgen("graph", "--preset", "bridge", "-n", "2")
    assert mermaid.returncode == 0 and mermaid.stdout.startswith("graph LR\n")
    assert mermaid.stdout.count(" ---|") == 2 and "bridge v-net-0<br/>172.16.0.1" in mermaid.stdout
    dot = nsgen("graph", "--preset", "mesh", "--format", "dot")
    assert dot.returncode == 0 and dot.stdout.startswith('graph "mesh" {') and dot.stdout.count(" -- ") == 6
    assert nsgen("graph", "--format", "png").returncode == 2
    readme = lab_files.render(sources.load(preset="router"))["README.md"]
    assert "```mermaid\ngraph LR\n" in readme


def test_count_is_refused_where_it_makes_no_sense(tmp_path: Path) -> None:
    assert nsgen("render", "--preset", "pair", "-n", "3").returncode == 2
    assert nsgen("render", "--preset", "mesh", "-n", "1").returncode == 2
    topology = tmp_path / "lab.yaml"
    topology.write_text(yaml.safe_dump(presets.pair()))
    assert nsgen("render", topology, "-n", "3").returncode == 2
