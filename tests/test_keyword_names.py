"""Every name validation accepts works in every command and every style, keywords of iproute2 included.

The lab runs with no prefix, so its names reach `ip` bare: inside a throwaway network namespace with
its own mount namespace and /run (`unshare --net --mount`), so none of it can touch or outlive the
machine's own namespaces, devices or locks.
"""

from pathlib import Path

import pytest
from conftest import run

from nsgen.problems import TopologyError
from nsgen.render import lab_files, writing
from nsgen.render.styles import Style
from nsgen.validate import sources

#: Words iproute2 reads as keywords, or abbreviations of keywords, where a name could stand.
KEYWORDS = """up down help type dev name netns mtu peer master link addr neigh add del a d h n m t p ad de he
    li mt ne ty pe ma address via to from nomaster vrf group index alias txqlen qlen broadcast brd arp
    multicast on off list show set exec all""".split()


def keyword_lab() -> dict:
    """Namespaces, interfaces, a bridge, its ports and a host end, every one named by a keyword."""
    words = iter(KEYWORDS)
    namespaces = [next(words) for _ in range(8)]
    bridge = next(words)
    document: dict = {
        "name": "keywords",
        "namespaces": {ns: {} for ns in namespaces},
        "bridges": {bridge: {"addresses": ["10.0.0.254/24"], "subnet": "10.0.0.0/24"}},
        "host": {"interfaces": {next(words): {"addresses": ["10.1.0.1/30"]}}},
        "links": [],
    }
    for ns in namespaces[:6]:
        document["links"].append([f"{ns}:{next(words)}", f"{bridge}:{next(words)}"])
    document["links"].append({"endpoints": [f"{namespaces[6]}:{next(words)}", f"{namespaces[7]}:{next(words)}"],
                              "subnet": "10.2.0.0/30"})  # fmt: skip
    host_end = next(iter(document["host"]["interfaces"]))
    document["links"].append({"endpoints": [f"{namespaces[6]}:{next(words)}", f"host:{host_end}"], "subnet": "10.1.0.0/30"})
    document["namespaces"][namespaces[6]]["interfaces"] = {}
    return document


@pytest.mark.kernel
@pytest.mark.parametrize("style", list(Style))
def test_a_lab_named_by_keywords_comes_up_verifies_and_goes(tmp_path: Path, style: Style) -> None:
    loaded = sources.from_document(keyword_lab(), "keywords", "test")
    lab_dir = tmp_path / "lab"
    writing.write(lab_files.render(loaded, style), lab_dir)
    script = (
        "set -e; mount -t tmpfs nsgen-test /run; mkdir /run/netns; mount -t sysfs nsgen-test /sys; ip link set dev lo up; "
        "bash setup.sh; bash verify.sh; bash teardown.sh; echo left: $(ip netns list | wc -l)"
    )
    result = run("unshare", "--net", "--mount", "--propagation", "private", "bash", "-c", script, cwd=lab_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "lab keywords is up: 8 namespace(s)" in result.stdout
    assert ", 0 failed" in result.stdout and " 0 passed" not in result.stdout
    assert result.stdout.rstrip().endswith("left: 0")


@pytest.mark.parametrize("name", ["lo", "all", "default"])
def test_names_the_kernel_keeps_are_refused_in_one_line(name: str) -> None:
    document = keyword_lab()
    document["links"][0][0] = f"up:{name}"
    with pytest.raises(TopologyError) as caught:
        sources.from_document(document, "kw.yaml", "test")
    assert [str(p) for p in caught.value.problems] == [
        f"kw.yaml: links[0][0]: '{name}' is a name the kernel keeps (lo, all, default): choose another"
    ]
