"""Plans as tables: topology in, the exact steps out (no root needed); the runtime section of every script."""

import hashlib
import re
from ipaddress import ip_address

import pytest
from conftest import REPO, nsgen

from nsgen.plan import lab_plans
from nsgen.plan.commands import Ping, Plan
from nsgen.render import lab_files, styles, templates
from nsgen.topology import presets
from nsgen.validate import sources
from nsgen.validate.lab import build_lab
from nsgen.validate.names import RESERVED_ALIASES, RUNTIME_FUNCTIONS


def _commands(steps: Plan) -> list[tuple[str | None, str]]:
    """Each command as (where, its words): `None` for the root namespace."""
    return [(c.netns, " ".join(c.argv)) for step in steps for c in step.commands]


SETUP_TABLE = [
    (
        presets.pair(),
        [
            (None, "netns add ns-0"),
            (None, "netns add ns-1"),
            (None, "link add name veth-0 netns ns-0 type veth peer name veth-1 netns ns-1"),
            ("ns-0", "addr add 172.16.0.2 dev veth-0"),
            ("ns-1", "addr add 172.16.0.3 dev veth-1"),
            ("ns-0", "link set dev veth-0 addrgenmode none"),
            ("ns-1", "link set dev veth-1 addrgenmode none"),
            ("ns-0", "link set dev lo up"),
            ("ns-1", "link set dev lo up"),
            ("ns-0", "link set dev veth-0 up"),
            ("ns-1", "link set dev veth-1 up"),
            ("ns-0", "route add 172.16.0.0/16 dev veth-0"),
            ("ns-1", "route add 172.16.0.0/16 dev veth-1"),
        ],
    ),
    (
        {
            "name": "kw",
            "namespaces": {"up": {"interfaces": {"dev": {"addresses": ["10.0.0.1/24", "fd00::1/64"], "mtu": 1400}}}},
            "bridges": {"name": {"addresses": ["10.0.0.254/24"]}},
            "links": [["up:dev", "name:peer"]],
        },
        [
            (None, "netns add up"),
            (None, "link add name name address 4e:a9:e8:7d:32:60 type bridge"),
            (None, "addr add 10.0.0.254/24 dev name"),
            (None, "link set dev name up"),
            (None, "link add name peer master name type veth peer name dev netns up"),
            ("up", "addr add 10.0.0.1/24 dev dev"),
            ("up", "addr add fd00::1/64 nodad dev dev"),
            ("up", "link set dev dev mtu 1400"),
            ("up", "link set dev lo up"),
            ("up", "link set dev dev up"),
            (None, "link set dev peer up"),
        ],
    ),
]


@pytest.mark.parametrize("document, expected", SETUP_TABLE, ids=["pair", "keyword-names"])
def test_setup_plan(document: dict, expected: list) -> None:
    assert _commands(lab_plans.setup(build_lab(document, "t"))) == expected


def test_teardown_and_verify_plans() -> None:
    lab = build_lab(presets.build("bridge", 2), "t", prefix="p-")
    teardown = lab_plans.teardown(lab)
    assert [(c.tool, c.argv) for c in teardown[0].commands] == [("stop", ("p-ns-0", "p-ns-1"))]
    assert _commands(teardown[1:]) == [
        (None, "netns del p-ns-0"),
        (None, "netns del p-ns-1"),
        (None, "link del dev p-v-net-0"),
    ]
    pings = [c for step in lab_plans.verify(lab) for c in step.commands]
    assert pings[0] == Ping("p-ns-0", ip_address("172.16.0.1"), "bridge v-net-0")
    assert pings[0].argv == ("ip", "netns", "exec", "p-ns-0", "ping", "-4", "-c", "1", "-W", "2", "172.16.0.1")
    assert all(isinstance(c, Ping) for c in pings) and len(pings) == 4


def _joined_settings(argvs: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """Commands as the batched style prints them: a device's `link set` settings on its first line."""
    first: dict[str, int] = {}
    result: list[tuple[str, ...]] = []
    for argv in argvs:
        if argv[:3] == ("link", "set", "dev") and argv[3] in first:
            result[first[argv[3]]] += argv[4:]
            continue
        if argv[:3] == ("link", "set", "dev"):
            first[argv[3]] = len(result)
        result.append(argv)
    return result


@pytest.mark.parametrize("preset, count", [("router", None), ("bridge", 120)])
def test_every_style_prints_the_same_plan(preset: str, count: int | None) -> None:
    lab = build_lab(presets.build(preset, count), "t")
    setup = lab_plans.setup(lab)
    commands = [c for step in setup for c in step.commands if c.tool == "ip"]
    tutorial = [w for block in styles.tutorial(lab, setup) for w in block.lines]
    aliases = {ns.alias: ns.netns for ns in lab.namespaces}
    assert [(aliases.get(w[0]), tuple(w[1:])) for w in tutorial if w[0] != "set_sysctl"] == [
        (c.netns, c.argv) for c in commands
    ]
    batches = styles.batched(lab, setup)
    roots = [b for b in batches if b.netns is None]
    assert len(roots) == 1
    printed_root = [tuple(line.split()) for line in roots[0].lines if not line.startswith("#")]
    assert printed_root == _joined_settings([c.argv for c in commands if c.netns is None])
    for batch in batches:
        if batch.netns is not None:
            inside = [c.argv for c in commands if c.netns == batch.netns]
            assert [tuple(line.split()) for line in batch.lines] == _joined_settings(inside)


def _lab_part(script: str) -> str:
    """From the lab's marker to the next section's (its record, or the runtime)."""
    return script.split("\n# === the lab '", 1)[1].split("\n# === ", 1)[0]


def test_the_pair_setup_shows_its_lab_on_one_screen() -> None:
    setup = lab_files.render(sources.load(preset="pair"))["setup.sh"]
    assert len(_lab_part(setup).splitlines()) <= 40
    assert setup.index("lab_steps() {") < setup.index("# === nsgen runtime:")


@pytest.mark.parametrize("script", lab_files.SCRIPTS)
def test_the_runtime_is_the_same_in_every_lab_and_carries_its_sha256(script: str) -> None:
    runtimes = set()
    for preset in presets.PRESETS:
        for style in styles.Style:
            text = lab_files.render(sources.load(preset=preset, prefix="x-"), style)[script]
            marker, body = text.split("# === nsgen runtime: sha256 ", 1)[1].split("\n", 1)
            assert marker == hashlib.sha256(body.encode()).hexdigest() + " ==="
            runtimes.add(body)
    assert len(runtimes) == 1
    printed = nsgen("runtime", script)
    assert printed.returncode == 0 and printed.stdout.split("\n", 1)[1] == runtimes.pop()
    listed = nsgen("runtime").stdout
    assert f"{marker.split()[0]}  {script}" in listed


def test_no_alias_can_hide_a_runtime_function() -> None:
    defined = set()
    for script in (*lab_files.SCRIPTS, lab_files.APPLY):
        defined |= set(re.findall(r"^([a-zA-Z_]+)\(\) \{", templates.runtime(script), re.M))
    assert defined <= set(RUNTIME_FUNCTIONS) | {"displayLinks", "displayAddr", "ip"}
    assert set(RUNTIME_FUNCTIONS) <= RESERVED_ALIASES and defined <= RESERVED_ALIASES


def test_committed_generated_runtime_is_current() -> None:
    result = nsgen("runtime", "-o", REPO / "generated" / "runtime", "--check")
    assert result.returncode == 0, f"generated/runtime is stale: run `nsgen runtime -o generated/runtime`\n{result.stderr}"
