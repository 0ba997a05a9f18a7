"""Plans as tables: topology in, the exact steps out (no root needed); the runtime sections of every script."""

import hashlib
import re
from ipaddress import ip_address
from pathlib import Path

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
    assert pings[0] == Ping("ns-0", "p-ns-0", ip_address("172.16.0.1"), "bridge v-net-0")
    assert pings[0].argv == ("ip", "netns", "exec", "p-ns-0", "ping", "-4", "-c", "1", "-i", "0.5", "-w", "3", "172.16.0.1")
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


#: Labs that carry every runtime section between them: the presets, the example, and links with conditions.
CONDITIONED = {
    "name": "shaped",
    "namespaces": {"a": {"interfaces": {"e0": {"addresses": ["10.9.0.1/24"]}}},
                   "b": {"interfaces": {"e0": {"addresses": ["10.9.0.2/24"]}}}},
    "links": [{"endpoints": ["a:e0", "b:e0"], "rate": "10mbit"}],
}


def _runtime_labs() -> list[sources.LoadedLab]:
    return [
        *(sources.load(preset=preset, prefix="x-") for preset in presets.PRESETS),
        sources.load(REPO / "examples" / "web.yaml"),
        sources.from_document(CONDITIONED, "shaped.yaml", "shaped.yaml", ""),
        sources.from_document(MACVLANS, "macvlans.yaml", "macvlans.yaml", ""),
    ]


#: Two namespaces as macvlans of a device of the machine's (the section `parents` checks it is there).
MACVLANS = {
    "name": "mv",
    "namespaces": {name: {"interfaces": {"m0": {"addresses": [f"10.88.0.{i}/24"]}}} for i, name in enumerate(("a", "b"), 2)},
    "links": [["a:m0", "macvlan:eth1"], ["b:m0", "macvlan:eth1"]],
}


@pytest.mark.parametrize("script", lab_files.SCRIPTS)
def test_each_runtime_section_is_the_same_in_every_lab_and_carries_its_sha256(script: str) -> None:
    bodies: dict[str, set[str]] = {}
    for loaded in _runtime_labs():
        for style in styles.Style:
            text = lab_files.render(loaded, style)[script]
            marker, rest = text.split("# === nsgen runtime: sha256 ", 1)[1].split("\n", 1)
            assert marker == hashlib.sha256(rest.encode()).hexdigest() + " ==="  # every byte after it
            found = templates.carried(text)
            assert found is not None and found.current and not found.loose
            # the sections its lab needs, in the fixed order, its core last
            assert [s.name for s in found.sections] == [*lab_files.sections(loaded.lab, script), script]
            for name, body in re.findall(r"^# --- nsgen runtime section (\S+): sha256 \S+ ---\n(.*?)(?=^# --- nsgen|\Z)",
                                          rest, re.M | re.S):
                bodies.setdefault(name, set()).add(body)
    assert set(bodies) == {*templates.SCRIPT_SECTIONS[script], script}  # the labs carry every one between them
    assert all(len(texts) == 1 for texts in bodies.values())
    printed = nsgen("runtime", script)  # every section it may carry
    assert printed.returncode == 0 and templates.carried(printed.stdout).current  # type: ignore[union-attr]
    assert [s.name for s in templates.carried(printed.stdout).sections] == [*templates.SCRIPT_SECTIONS[script], script]  # type: ignore[union-attr]
    listed = nsgen("runtime").stdout
    for name in bodies:
        assert f"{templates.section_sha256(name)}  {name}\n" in listed
    for name in templates.SCRIPT_SECTIONS[script]:
        assert nsgen("runtime", name).stdout == templates.section(name)


#: The runtime sections each preset's setup.sh carries before its core.
SETUP_SECTIONS = {
    "pair": (),
    "bridge": ("forward", "rules"),
    "mesh": (),
    "router": ("forward", "rules", "sysctl", "ipv6"),  # dual-stack: up once no address is tentative
    "host": (),
}


@pytest.mark.parametrize("preset", presets.PRESETS)
def test_a_setup_carries_the_sections_its_lab_needs(preset: str) -> None:
    lab = sources.load(preset=preset).lab
    assert lab_files.sections(lab, "setup.sh") == SETUP_SECTIONS[preset]


def test_the_example_and_conditions_carry_their_sections() -> None:
    web = sources.load(REPO / "examples" / "web.yaml").lab
    assert lab_files.sections(web, "setup.sh") == ("services", "forward", "rules", "sysctl")
    assert lab_files.sections(web, "teardown.sh") == ("services", "rules", "sysctl", "stop")
    shaped = sources.from_document(CONDITIONED, "shaped.yaml", "shaped.yaml", "").lab
    assert lab_files.sections(shaped, "setup.sh") == ("tc",)
    assert lab_files.sections(shaped, "teardown.sh") == ("stop",)


def test_the_pair_setup_runtime_is_its_core_alone_and_short() -> None:
    setup = lab_files.render(sources.load(preset="pair"))["setup.sh"]
    runtime = setup[setup.index("# === nsgen runtime:") :]
    assert len(runtime.splitlines()) <= 320  # the bound; 250 is the aim (299 now)
    assert re.findall(r"^# --- nsgen runtime section (\S+):", runtime, re.M) == ["setup.sh"]
    assert not re.search(r"service|iptables|\btc\b|qdisc|sysctl", runtime)


def _defined(text: str) -> set[str]:
    return set(re.findall(r"^([a-zA-Z_]+)\(\) \{", text, re.M))


def test_no_script_calls_a_function_of_a_section_it_left_out() -> None:
    for loaded in _runtime_labs():
        for style in styles.Style:
            for script, text in lab_files.render(loaded, style).items():
                if script not in lab_files.SCRIPTS:
                    continue
                carried = {*lab_files.sections(loaded.lab, script), script}
                left_out = {f for name in templates.SCRIPT_SECTIONS[script] if name not in carried
                            for f in _defined(templates.section(name))} - _defined(text)
                code = "\n".join(re.sub(r"(^|\s)# .*", "", line) for line in text.splitlines())  # no comments
                called = {f for f in left_out if re.search(rf"(?<![-\w${{]){f}(?![-\w=])", code)}
                assert not called, f"{loaded.lab.name} {script} ({style.value}) calls {called}, of sections it left out"


def test_runtime_names_the_sections_a_file_carries_and_checks_them(tmp_path: Path) -> None:
    text = lab_files.render(sources.load(REPO / "examples" / "web.yaml"))["setup.sh"]
    script = tmp_path / "setup.sh"
    script.write_text(text)
    checked = nsgen("runtime", script)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    lines = checked.stdout.splitlines()
    assert lines[0].endswith(": matches the bytes after it")
    assert [line.split()[0] for line in lines[1:]] == ["services", "forward", "rules", "sysctl", "setup.sh"]
    assert all(line.endswith("  this nsgen's") for line in lines[1:])
    # an edited section: the marker and that section's line no longer match its bytes
    script.write_text(text.replace("forward_drop=''", "forward_drop='x'", 1))
    edited = nsgen("runtime", script)
    assert edited.returncode == 1 and "does not match the bytes after it" in edited.stdout
    assert [line.split()[0] for line in edited.stdout.splitlines() if "edited: its bytes' sha256 is" in line] == ["forward"]
    # another nsgen's section, its line and the marker made to match its bytes again
    old = templates.carried(text)
    body = text.split("# --- nsgen runtime section rules: sha256 ", 1)[1].split("\n", 1)[1].split("# --- nsgen", 1)[0]
    other = body.replace("rules_deleted=0", "rules_deleted=0 ", 1)
    sha = hashlib.sha256(other.encode()).hexdigest()
    rest = text.split("\n# === nsgen runtime: sha256 ", 1)[1].split("\n", 1)[1]
    rest = rest.replace(body, other, 1).replace(next(s.stated for s in old.sections if s.name == "rules"), sha, 1)  # type: ignore[union-attr]
    head = text.split("\n# === nsgen runtime: sha256 ", 1)[0]
    script.write_text(f"{head}\n# === nsgen runtime: sha256 {hashlib.sha256(rest.encode()).hexdigest()} ===\n{rest}")
    other_nsgen = nsgen("runtime", script)
    assert other_nsgen.returncode == 1 and ": matches the bytes after it" in other_nsgen.stdout
    assert f"rules     sha256 {sha}  not this nsgen's (this nsgen's: {templates.section_sha256('rules')})" in other_nsgen.stdout
    # no runtime at all
    (tmp_path / "plain.sh").write_text("#!/bin/bash\n")
    plain = nsgen("runtime", tmp_path / "plain.sh")
    assert plain.returncode == 2 and "no nsgen runtime in it" in plain.stderr


def test_no_alias_can_hide_a_runtime_function() -> None:
    defined = set()
    for name in (*templates.SECTIONS, *templates.SCRIPT_SECTIONS):
        defined |= _defined(templates.section(name))
    assert defined <= set(RUNTIME_FUNCTIONS) | {"displayLinks", "displayAddr", "ip"}
    assert set(RUNTIME_FUNCTIONS) <= RESERVED_ALIASES and defined <= RESERVED_ALIASES


def test_committed_generated_runtime_is_current() -> None:
    result = nsgen("runtime", "-o", REPO / "generated" / "runtime", "--check")
    assert result.returncode == 0, f"generated/runtime is stale: run `nsgen runtime -o generated/runtime`\n{result.stderr}"


def test_an_apply_sh_carries_its_runtime_whole_under_its_marker() -> None:
    """apply.sh's marker line is the sha256 of every byte after it (an extra newline at its end broke it)."""
    old, new = (sources.load(preset="bridge", count=count, prefix="x-") for count in (3, 4))
    text = lab_files.render_apply(old.lab, new)[lab_files.APPLY]
    found = templates.carried(text)
    assert found is not None and found.current and not found.loose
    assert text.endswith('recorded in ${record_file}"\n')
