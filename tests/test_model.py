"""Validation completes the model; the normalised topology round-trips; reachability follows the routes."""

import ipaddress
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nsgen.plan import reachability
from nsgen.problems import TopologyError
from nsgen.render import lab_files
from nsgen.topology import presets, yaml_file
from nsgen.topology.ends import NamespaceEnd
from nsgen.topology.model import Interface, Route
from nsgen.validate import sources
from nsgen.validate.lab import build_lab


def test_pair_is_completed_with_defaults() -> None:
    document = presets.pair()
    del document["namespaces"]["ns-1"]["alias"]
    lab = build_lab(document, "t")
    ns0, ns1 = lab.namespaces
    assert (ns0.alias, ns1.alias) == ("ip0", "ip1")  # default: ip<index> in declaration order
    assert ns0.interfaces == (Interface("veth-0", "veth-0", (ipaddress.ip_interface("172.16.0.2/32"),)),)
    assert ns1.routes == (Route(ipaddress.ip_network("172.16.0.0/16"), dev="veth-1"),)
    assert (lab.links[0].a, lab.links[0].b) == (
        NamespaceEnd("ns-0", "veth-0"),
        NamespaceEnd("ns-1", "veth-1"),
    )


def test_prefix_renames_namespaces_only() -> None:
    lab = build_lab(presets.pair(), "t", prefix="p1-")
    assert [ns.netns for ns in lab.namespaces] == ["p1-ns-0", "p1-ns-1"]
    assert [ns.name for ns in lab.namespaces] == ["ns-0", "ns-1"]
    assert [iface.name for ns in lab.namespaces for iface in ns.interfaces] == ["veth-0", "veth-1"]


def test_a_link_end_declares_its_interface() -> None:
    document = presets.pair()
    document["namespaces"]["ns-1"] = None
    lab = build_lab(document, "t")
    assert lab.namespace("ns-1").interfaces == (Interface("veth-1", "veth-1"),)


def test_a_gateway_route_and_ipv6() -> None:
    document = {
        "name": "v6",
        "namespaces": {
            "a": {"interfaces": {"e0": {"addresses": ["2001:db8::1/64", "10.0.0.1/24"]}}},
            "b": {
                "interfaces": {"e0": {"addresses": ["2001:db8::2/64", "10.0.0.2/24"]}},
                "routes": [{"to": "default", "via": "2001:db8::1"}, {"to": "192.168.0.0/16", "via": "10.0.0.1"}],
            },
        },
        "links": [["a:e0", "b:e0"]],
    }
    lab = build_lab(document, "t")
    assert [r.destination for r in lab.namespace("b").routes] == ["::/0", "192.168.0.0/16"]
    assert lab.namespace("b").routes[0].to == ipaddress.ip_network("::/0")
    found = {(c.source.name, str(c.address)) for c in reachability.checks(lab)}
    assert found == {("a", "2001:db8::2"), ("a", "10.0.0.2"), ("b", "2001:db8::1"), ("b", "10.0.0.1")}


def test_reachability_is_the_intent_whatever_the_routes() -> None:
    document = presets.pair()
    assert len(reachability.checks(build_lab(document, "t"))) == 2
    document["namespaces"]["ns-1"]["routes"] = []  # the guide's "we forgot to set the routes": verify must fail
    assert len(reachability.checks(build_lab(document, "t"))) == 2


def test_large_segments_are_sampled_linearly() -> None:
    small = build_lab(presets.bridge(15), "t")  # 16 members with the bridge: all pairs
    assert len(reachability.checks(small)) == 15 * 15  # every other namespace, and the gateway
    large = build_lab(presets.bridge(200), "t")
    found = reachability.checks(large)
    assert 200 * reachability.SAMPLED_PEERS <= len(found) <= 200 * (reachability.SAMPLED_PEERS + 1)
    assert {str(c.address) for c in found} >= {str(a.ip) for ns in large.namespaces for i in ns.interfaces for a in i.addresses}


def test_every_problem_is_reported_at_once() -> None:
    document = presets.pair()
    document["namespaces"]["ns-0"]["routes"][0]["dev"] = "veth-9"
    document["links"][0][1] = "ns-7:veth-1"
    with pytest.raises(TopologyError) as caught:
        build_lab(document, "lab.yaml")
    assert [str(p) for p in caught.value.problems] == [
        "lab.yaml: links[0][1]: unknown namespace 'ns-7' (known: ns-0, ns-1)",
        "lab.yaml: namespaces.ns-0.routes[0].dev: unknown device 'veth-9' in this namespace (did you mean 'veth-0'? known: veth-0)",
    ]


names = st.from_regex(r"[a-z][a-z0-9-]{0,6}", fullmatch=True)


@st.composite
def topologies(draw: Any) -> dict[str, Any]:
    """Valid topologies: a chain of namespaces, each link a /30 of 10.x, some routes, some aliases."""
    ns_names = draw(st.lists(names, min_size=2, max_size=6, unique=True))
    namespaces: dict[str, Any] = {name: {"interfaces": {}, "routes": []} for name in ns_names}
    links = []
    for index, (left, right) in enumerate(zip(ns_names, ns_names[1:])):
        net = ipaddress.ip_network(f"10.{index}.0.0/30")
        hosts = list(net.hosts())
        for side, (node, host) in enumerate(((left, hosts[0]), (right, hosts[1]))):
            ifname = f"l{index}s{side}"
            bare = draw(st.booleans())
            namespaces[node]["interfaces"][ifname] = {"addresses": [str(host) if bare else f"{host}/30"]}
            if bare or draw(st.booleans()):
                namespaces[node]["routes"].append({"to": str(net), "dev": ifname})
        links.append([f"{left}:l{index}s0", f"{right}:l{index}s1"])
    if draw(st.booleans()):
        namespaces[ns_names[0]]["alias"] = "first"
    return {"name": draw(names), "description": draw(st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF, exclude_categories=("Cc", "Cf", "Cs")), max_size=40)),
            "namespaces": namespaces, "links": links}


@settings(max_examples=60, deadline=None)
@given(topologies())
def test_normalised_topology_round_trips(document: dict[str, Any]) -> None:
    lab = build_lab(document, "t")
    text = yaml_file.dump(yaml_file.document(lab))
    again = build_lab(yaml_file.parse(text, "normalised"), "normalised")
    assert again == lab
    assert yaml_file.dump(yaml_file.document(again)) == text
    loaded = sources.LoadedLab(lab, "test")
    assert lab_files.render(loaded) == lab_files.render(loaded)


def test_a_dangling_link_does_not_hide_a_bad_gateway_elsewhere() -> None:
    document = presets.build("router")
    document["links"][0][1] = "nowhere:eth0"  # a dangling link
    document["namespaces"]["right-0"]["routes"] = [{"to": "default", "via": "10.9.9.9"}]  # a gateway off-subnet
    with pytest.raises(TopologyError) as caught:
        build_lab(document, "lab.yaml")
    lines = [str(p) for p in caught.value.problems]
    assert len(lines) == 2, lines
    assert lines[0].startswith("lab.yaml: links[0][1]: unknown namespace 'nowhere'")
    assert lines[1] == "lab.yaml: namespaces.right-0.routes[0].via: gateway 10.9.9.9 is on no connected subnet of this namespace"


def test_validation_is_a_list_of_named_phases() -> None:
    from nsgen.validate.lab import PHASES

    names = [name for name, _, _ in PHASES]
    assert names[:5] == ["schema", "text", "names", "interfaces", "links"] and len(set(names)) == len(names)
    assert names[-1] == "kernel limits"  # checked on the model the phases built


def test_the_phase_list_is_what_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """A phase left out of PHASES checks nothing: the list, not a class's methods, is what validation runs."""
    from nsgen.validate import lab as validate_lab

    document = presets.build("pair")
    document["namespaces"]["ns-1"]["alias"] = "cd"  # a shell builtin: the aliases phase refuses it
    with pytest.raises(TopologyError, match="alias 'cd' would hide"):
        validate_lab.build_lab(document, "test")
    without = tuple(phase for phase in validate_lab.PHASES if phase[0] != "aliases")
    monkeypatch.setattr(validate_lab, "PHASES", without)
    assert validate_lab.build_lab(document, "test").namespace("ns-1").alias == "cd"
