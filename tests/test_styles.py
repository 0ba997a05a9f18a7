"""The batched and tutorial styles build the same kernel state; large labs report progress."""

from pathlib import Path

import pytest
from conftest import ip_json, leftovers, run

from nsgen.render import lab_files, writing
from nsgen.render.styles import Style
from nsgen.run import scripts
from nsgen.validate import sources

#: Flags the kernel sets a moment after setup: a veth's carrier follows its peer's state asynchronously.
CARRIER_FLAGS = {"LOWER_UP", "NO-CARRIER"}

pytestmark = pytest.mark.kernel


def _kernel_state(prefix: str, netns: list[str], root_devices: tuple[str, ...]) -> dict:
    """What the lab is, as `ip -j` shows it, without what the kernel picks (MACs, indexes, link-local) or
    settles later: operstate and carrier (LOWER_UP, NO-CARRIER) follow a moment after a device is up, and
    its UP flag is what setup sets."""

    def links(entries: list[dict]) -> list[tuple]:
        return sorted(
            (e["ifname"], e.get("linkinfo", {}).get("info_kind"), e["mtu"], e.get("master"),
             tuple(sorted(set(e["flags"]) - CARRIER_FLAGS)), e.get("linkinfo", {}).get("info_data", {}).get("addrgenmode"))
            for e in entries
        )

    def addresses(entries: list[dict]) -> list[tuple]:
        return sorted((e["ifname"], a["local"], a["prefixlen"]) for e in entries for a in e.get("addr_info", [])
                      if not a["local"].startswith("fe80:"))

    def routes(entries: list[dict]) -> list[tuple]:
        return sorted((r["dst"], r.get("gateway"), r.get("dev"), r.get("scope")) for r in entries)

    state: dict = {}
    for ns in netns:
        state[ns] = (links(ip_json("-d", "link", "show", netns=ns)), addresses(ip_json("addr", "show", netns=ns)),
                     routes(ip_json("route", "show", netns=ns)), routes(ip_json("-6", "route", "show", netns=ns)))
    root = [e for e in ip_json("-d", "link", "show") if e["ifname"] in root_devices]
    state["root"] = (links(root), addresses([e for e in ip_json("addr", "show") if e["ifname"] in root_devices]))
    return state


@pytest.mark.parametrize(("preset", "count"), [("bridge", 3), ("router", 1), ("mesh", 3), ("host", None)])
def test_both_styles_build_the_same_kernel_state(tmp_path: Path, prefix: str, preset: str, count: int | None) -> None:
    loaded = sources.load(preset=preset, prefix=prefix, count=count)
    netns = [ns.netns for ns in loaded.lab.namespaces]
    states = []
    for style in Style:
        lab_dir = tmp_path / style
        writing.write(lab_files.render(loaded, style), lab_dir)
        setup = run("bash", lab_dir / "setup.sh")
        assert setup.returncode == 0, setup.stderr
        try:
            states.append(_kernel_state(prefix, netns, loaded.lab.root_devices))
        finally:
            assert run("bash", lab_dir / "teardown.sh").returncode == 0
        assert leftovers(prefix) == set()
    assert states[0] == states[1]
    assert all(states[0][ns][1] for ns in netns)  # addresses were compared, not two empty lists


def test_large_labs_report_progress_and_nsgen_up_draws_a_bar(tmp_path: Path, prefix: str,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    loaded = sources.load(preset="bridge", prefix=prefix, count=60)
    lab_dir = tmp_path / "big"
    writing.write(lab_files.render(loaded), lab_dir)
    try:
        assert scripts.run_script(lab_dir, "setup.sh", progress=True) == 0
    finally:
        assert run("bash", lab_dir / "teardown.sh").returncode == 0
    out, err = capsys.readouterr()
    assert "progress:" not in out and "lab bridge is up: 60 namespace(s)" in out
    frames = [frame for frame in err.split("\r") if frame]
    assert len(frames) == 10 and frames[0].endswith(" 10 % (6/60 namespaces)")
    assert frames[-1] == "[" + "#" * scripts.BAR_WIDTH + "] 100 % (60/60 namespaces)\n"
    assert leftovers(prefix) == set()
