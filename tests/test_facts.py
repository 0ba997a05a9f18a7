"""The fact table and the runtime's one reader, without root: canned `ip -o` and `tc` output (taken
from a real namespace, tests/canned/) fed to the bash reader and comparison that verify.sh, check.sh,
apply.sh and `nsgen status` run, and every preset's declared facts read back through the table."""

import shlex
import subprocess
from pathlib import Path

import pytest

from nsgen.plan.declared import declared, places
from nsgen.run import drift
from nsgen.topology import facts
from nsgen.topology.facts import Difference, Fact
from nsgen.topology.presets import PRESETS
from nsgen.validate.lab import build_lab
from nsgen.validate.sources import load

CANNED = Path(__file__).parent / "canned"


def _bash(script: str) -> list[str]:
    """`script` run after the runtime's reader, its dumps replaced by the canned ones."""
    stubs = f"""
kernel_dump() {{ cat {CANNED / "ip-o.txt"}; echo @tc; cat {CANNED / "tc-qdisc.txt"}; }}
lab_key=canned
netns_dir={CANNED}
"""
    program = "set -Eeuo pipefail\nlab_key=canned\n" + drift.reader() + stubs + script
    result = subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=True)
    return result.stdout.splitlines()


def test_the_reader_writes_the_kernel_in_the_facts_words() -> None:
    assert _bash('kernel_facts ns; printf "%s\\n" "${kernel[@]}"') == [
        "lo address 127.0.0.1/8",
        "lo address ::1/128",
        "e0 address 10.0.0.2/24",
        "e0 address fd00::2/64",  # link-local addresses are the kernel's own
        "lo up",  # lo is every namespace's: no `device lo`
        "lo mtu 65536",
        "device e1",
        "e1 up",
        "e1 mtu 1500",
        "e1 mac 0e:3e:93:c0:3d:b0",
        "e1 master br0",
        "device e0",
        "e0 up",
        "e0 mtu 1400",
        "e0 mac 02:00:00:00:00:01",
        "device br0",
        "br0 up",
        "br0 mtu 1500",
        "br0 mac 0e:3e:93:c0:3d:b0",
        "route default via 10.0.0.1 dev e0",
        "route 10.5.0.0/16 dev e0",  # the connected 10.0.0.0/24 is the kernel's own
        "route blackhole 10.77.0.0/24",
        "rule 100 from 10.77.0.0/24 lookup 100",  # the three default rules are the kernel's own
        "route unreachable fd00:9::/64",
        "rule -6 200 from all lookup 200",
        "e0 qdisc tbf",
        "e0 rate 2500kbit",  # tc's 2500Kbit, in the largest unit that divides it
    ]


#: `tc qdisc show` of netem qdiscs, in the words iproute2's q_netem.c prints them (this machine's kernel
#: has no sch_netem to take them from): delay and jitter, random loss, a rate; a loss model nsgen never makes.
NETEM_SHOW = """qdisc netem 8001: dev e0 root refcnt 2 limit 1000 delay 20ms  5ms loss 0.5% rate 10Mbit
qdisc netem 8002: dev e1 root refcnt 2 limit 1000 loss 1%
qdisc netem 8003: dev e2 root refcnt 2 limit 1000 delay 1.5s loss state p13 1% p31 2%"""


def _netem(script: str) -> list[str]:
    return _bash(f"kernel_dump() {{ echo @6; echo @tc; cat <<'TC'\n{NETEM_SHOW}\nTC\n}}\n{script}")


def test_netems_delay_jitter_and_loss_read_back_as_the_lab_declares_them() -> None:
    assert _netem('kernel_facts ns; printf "%s\\n" "${kernel[@]}"') == [
        "e0 qdisc netem", "e0 delay 20ms", "e0 jitter 5ms", "e0 loss 0.5%", "e0 rate 10mbit",
        "e1 qdisc netem", "e1 loss 1%",
        "e2 qdisc netem", "e2 delay 1.5s",  # a loss model (`loss state`) is none of nsgen's
    ]
    spec = {"endpoints": ["a:e0", "b:e0"], "delay": "0.02s", "jitter": "5000us", "loss": "0.5%", "rate": "10000kbit"}
    lab = build_lab({"name": "n", "namespaces": {"a": {}, "b": {}}, "links": [spec]}, "t")
    conditions = [f.line for f in declared(lab) if f.node == "a" and f.kind in facts.CONDITIONED]
    assert conditions == ["e0 qdisc netem", "e0 delay 20ms", "e0 jitter 5ms", "e0 loss 0.5%", "e0 rate 10mbit"]
    assert _netem(f"with_extras=1\ncompare_facts ns node <<'NSGEN'\n{chr(10).join(conditions)}\nNSGEN\n"
                  'for line in "${drift[@]}"; do echo "$line"; done') == []
    changed = ["e1 qdisc netem", "e1 delay 30ms", "e1 loss 2%"]
    assert _netem(f"with_extras=0\ncompare_facts ns node <<'NSGEN'\n{chr(10).join(changed)}\nNSGEN\n"
                  'for line in "${drift[@]}"; do echo "$line"; done') == ["node: e1 delay 30ms: missing", "node: e1 loss 2%: different (1%)"]


def test_every_line_the_reader_writes_is_a_fact_of_the_table() -> None:
    lines = _bash('kernel_facts ns; printf "%s\\n" "${kernel[@]}"')
    assert lines  # a reader that writes nothing has no line to check
    for line in lines:
        fact = facts.parse(line, "ns", "n")
        assert fact.line == line and fact.kind in facts.KINDS


def _differences(declared_lines: list[str], extras: bool = True) -> list[str]:
    heredoc = "\n".join(declared_lines)
    return _bash(f"with_extras={int(extras)}\ncompare_facts ns node <<'NSGEN'\n{heredoc}\nNSGEN\nfor line in \"${{drift[@]}}\"; do echo \"$line\"; done")


def test_the_comparison_follows_the_table() -> None:
    declared_lines = [
        "device e0", "e0 up", "e0 mtu 1500", "e0 address 10.0.0.2/24", "e0 qdisc tbf", "e0 rate 10mbit",
        "device e1", "e1 up", "e1 master br1", "device br0", "br0 up",
        "device e9", "e9 up", "e9 address 10.9.0.1/24",  # gone: one line, not what it holds
        "route default via 10.0.0.1",  # the kernel names its device too: the same route
        "route 10.6.0.0/16 dev e0",
        "sysctl net.ipv4.ip_forward=1",  # read from /proc in the namespace: canned here as none
        "service web running",
    ]
    assert _differences(declared_lines) == [
        "node: e0 mtu 1500: different (1400)",
        "node: e0 rate 10mbit: different (2500kbit)",
        "node: e1 master br1: different (br0)",
        "node: device e9: missing",
        "node: route 10.6.0.0/16 dev e0: missing",
        "node: sysctl net.ipv4.ip_forward=1: different (unreadable)",
        "node: service web running: missing",
        # beyond the declared: an address of a declared device, a route of any type, a policy rule
        "node: e0 address fd00::2/64: extra",
        "node: route 10.5.0.0/16 dev e0: extra",
        "node: route blackhole 10.77.0.0/24: extra",
        "node: route unreachable fd00:9::/64: extra",
        "node: rule -6 200 from all lookup 200: extra",
        "node: rule 100 from 10.77.0.0/24 lookup 100: extra",
    ]


def test_without_extras_only_the_declared_are_compared() -> None:
    assert _differences(["device e0", "e0 up", "e0 mtu 1400"], extras=False) == []


def test_a_flag_the_kernel_lacks_is_said_as_the_table_says() -> None:
    assert [k.name for k in facts.KINDS.values() if k.absent] == ["up"]
    assert _differences(["device e0", "eth7 up"], extras=False) == ["node: eth7 up: different (down)"]


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_declared_fact_reads_back_through_the_table(name: str) -> None:
    lab = load(None, name).lab
    for fact in declared(lab):
        assert facts.parse(fact.line, fact.netns, fact.node) == fact or fact.kind == "namespace"
    assert all(place.lines for place in places(declared(lab)) if place.netns)


def test_a_line_that_is_no_fact_is_refused() -> None:
    with pytest.raises(ValueError, match="not a fact's line"):
        facts.parse("eth0 colour blue", None, "host")


def test_a_difference_is_said_with_its_fact() -> None:
    fact = Fact("p-ns-0", "ns-0", "mtu", "eth0", "9000")
    assert str(Difference(fact, "different", "1500")) == "ns-0: eth0 mtu 9000: different (1500)"
    assert fact.key == "eth0 mtu" and fact.make() == ("link", "set", "dev", "eth0", "mtu", "9000")
    assert Fact(None, "host", "rule", value="-6 200 from all lookup 200").remove() == ("-6", "rule", "del", "priority", "200")


IPTABLES_S = """-P PREROUTING ACCEPT
-A PREROUTING ! -d 127.0.0.0/8 -p tcp -m tcp --dport 8080 -m addrtype --dst-type LOCAL -m comment --comment "nsgen:canned" -j DNAT --to-destination 10.0.2.2:80
-A POSTROUTING -s 10.0.1.0/24 -m comment --comment nsgen:canned -j MASQUERADE
-A POSTROUTING -s 10.0.9.0/24 -m comment --comment "nsgen:other" -j MASQUERADE
-A POSTROUTING -s 10.0.1.0/24 -j MASQUERADE
"""


def test_the_reader_takes_the_labs_nat_rules_from_iptables_s_as_the_lab_writes_them() -> None:
    """iptables-nft quotes the comment and adds `-m tcp`, legacy iptables does neither: both read as the lab's
    commands write them; another lab's rules and rules without a comment are not this lab's."""
    dump = f"kernel_dump() {{ echo @nat; cat <<'CANNED'\n{IPTABLES_S}CANNED\n}}\n"
    assert _bash(dump + 'kernel_facts ""; printf "%s\\n" "${kernel[@]}"') == [
        "iptables -t nat -A PREROUTING ! -d 127.0.0.0/8 -p tcp --dport 8080 -m addrtype --dst-type LOCAL"
        " -m comment --comment nsgen:canned -j DNAT --to-destination 10.0.2.2:80",
        "iptables -t nat -A POSTROUTING -s 10.0.1.0/24 -m comment --comment nsgen:canned -j MASQUERADE",
    ]


FILTER_S = """-P FORWARD DROP
-A FORWARD -i p-br0 -o p-br0 -m comment --comment "nsgen:canned" -j ACCEPT
-A FORWARD -d 10.0.2.2/32 -p tcp -m tcp --dport 80 -m comment --comment nsgen:canned -j ACCEPT
-A FORWARD -i p-br9 -o p-br9 -m comment --comment "nsgen:canned" -j ACCEPT
-A INPUT -s 10.0.1.0/24 -m comment --comment "nsgen:canned" -j DROP
-A INPUT -s 10.0.1.0/24 -m comment --comment "nsgen:other" -j DROP
"""


def test_the_reader_takes_filter_rules_with_the_labs_comment_as_extra_but_allow_forwards() -> None:
    """The filter table's rules with the lab's comment are facts (extra: the lab declares none), but
    the FORWARD rules --allow-forward adds (lab_accepted), which are the lab's whether there or not."""
    accepted = "lab_accepted=([\"-i p-br0 -o p-br0\"]=1 [\"-d 10.0.2.2/32 -p tcp --dport 80\"]=1)\n"
    dump = f"kernel_dump() {{ echo @nat; echo @filter; cat <<'CANNED'\n{FILTER_S}CANNED\n}}\n"
    assert _bash(accepted + dump + 'kernel_facts ""; printf "%s\\n" "${kernel[@]}"') == [
        "iptables -t filter -A FORWARD -i p-br9 -o p-br9 -m comment --comment nsgen:canned -j ACCEPT",
        "iptables -t filter -A INPUT -s 10.0.1.0/24 -m comment --comment nsgen:canned -j DROP",
    ]
    # one of them there and the other not: --allow-forward adds all or none, so the other is missing
    one = accepted.replace(")\n", ' ["-s 10.0.1.0/24"]=1)\n')
    compared = 'with_extras=1\ncompare_facts "" host </dev/null\nprintf "%s\\n" "${drift[@]}"'
    assert _bash(one + dump + compared)[:1] == [
        "host: iptables -t filter -A FORWARD -s 10.0.1.0/24 -m comment --comment nsgen:canned -j ACCEPT: missing",
    ]
    fact = facts.parse("iptables -t filter -A INPUT -s 10.0.1.0/24 -m comment --comment nsgen:canned -j DROP", None, "host")
    assert fact.remove() == ("-t", "filter", "-D", "INPUT", "-s", "10.0.1.0/24", "-m", "comment", "--comment", "nsgen:canned", "-j", "DROP")


def test_links_from_json_read_as_ip_o_writes_them() -> None:
    """A lab namespace's links come as `ip -j link show` (canned from a real one: a veth pair, one end a
    bridge port, the other with its MTU, MAC and a tbf): links_text writes them as kernel_facts reads."""
    links = (CANNED / "ip-j-link-rule6.json").read_text().split("\n")[0]
    assert _bash(f"links_text {shlex.quote(links)}") == [
        "0: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536",
        "0: e1: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 master br0 link/ether 8a:b5:d2:b6:a2:8b",
        "0: e0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1400 link/ether 02:00:00:00:00:01",
        "0: br0: <NO-CARRIER,BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 link/ether 8a:b5:d2:b6:a2:8b",
    ]
    rules = (CANNED / "ip-j-link-rule6.json").read_text().splitlines()[1]
    assert _bash("printf '%s\\n' \"${rules6_default}\"") == [rules]  # the kernel's own two: no `ip -6 rule` asked


def test_a_dump_that_fails_neither_rolls_back_nor_stops_the_script() -> None:
    # the dump runs in the reading shell (into a file), which has the ERR trap (set -E) and errexit: a
    # command failing there must neither run the script's rollback nor end it (when the dump ran in a
    # process substitution, the rollback ran in that subshell while the script went on)
    undo = drift.template("runtime/_rollback.sh.j2").render()  # its ERR trap, as setup.sh and apply.sh set it
    stubs = """
dry_run=0 lab_key=canned netns_dir=/run/netns
rollback() { echo "rolled back in ${BASHPID}"; }
kernel_dump() { echo '1: e0: <UP> mtu 1500'; false; }
"""
    script = 'kernel_facts ns; printf "%s\\n" "${kernel[@]}" "the script went on"'
    program = "set -Eeuo pipefail\nlab_key=canned\n" + drift.reader() + undo + stubs + script
    result = subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=False)
    assert (result.returncode, result.stdout) == (0, "device e0\ne0 up\ne0 mtu 1500\nthe script went on\n"), result.stderr


def _places(count: int) -> str:
    """lab_facts of `count` places (each the canned namespace, declaring its own wrong MTU), as a lab's script has it."""
    calls = [f"  compare_facts ns n{i} <<'NSGEN'\ne0 mtu {1000 + i}\nNSGEN" for i in range(count)]
    return "lab_facts() {\n" + "\n".join(calls) + "\n}\n"


def test_in_parallel_gives_the_differences_in_the_places_order_as_one_shell_would() -> None:
    show = 'printf "%s\\n" "${drift[@]}" "${drift_rows[@]}"'
    one = _bash(_places(11) + f"lab_facts\n{show}")
    assert one[:2] == ["n0: e0 mtu 1000: different (1400)", "n1: e0 mtu 1001: different (1400)"] and len(one) == 22
    for jobs in (1, 3, 8, 16):  # more jobs than places: some compare none
        assert _bash(_places(11) + f"in_parallel {jobs} lab_facts\n{show}") == one


def test_in_parallel_fails_where_a_job_does_not_end() -> None:
    program = "set -Eeuo pipefail\nlab_key=canned\n" + drift.reader() + f"lab_key=canned netns_dir={CANNED}\n" + _places(6) + """
kernel_dump() { cat CANNED/ip-o.txt; echo @tc; }
eval "reader_$(declare -f kernel_facts)"  # the reader's own, as reader_kernel_facts
kernel_facts() { if [[ ${place} == 4 ]]; then exit 3; fi; reader_kernel_facts "$@"; }  # its job ends there
in_parallel 3 lab_facts
echo "not reached"
""".replace("CANNED", str(CANNED))
    result = subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=False)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == "bash: the kernel's reader failed in 1 of its 3 jobs\n"


FDB = """33:33:00:00:00:01 dev eth0 self permanent
00:00:00:00:00:00 dev p-vx1003 dst 198.51.100.2 self permanent
00:00:00:00:00:00 dev p-vx1003 dst 198.51.100.9 self permanent
00:00:00:00:00:00 dev other dst 198.51.100.3 self permanent
8a:b5:d2:b6:a2:8b dev p-vx1003 master p-lan permanent
"""


def test_a_vxlan_ports_flood_entries_are_read_where_the_lab_declares_some() -> None:
    """A spanning bridge's VXLAN port (a multi-host lab's) floods to each other host: its all-zero FDB
    entries are facts (another device's are not read), compared as declared: one lost, one extra."""
    dump = f"kernel_dump() {{ echo @fdb; if (( read_floods )); then cat <<'CANNED'\n{FDB}CANNED\nfi; }}\n"
    declared_lines = "p-vx1003 floods 198.51.100.2\np-vx1003 floods 198.51.100.3"
    compared = f"with_extras=0\ncompare_facts '' host p-vx1003 <<'NSGEN'\n{declared_lines}\nNSGEN\nprintf '%s\\n' \"${{drift[@]}}\""
    assert _bash(dump + compared) == ["host: p-vx1003 floods 198.51.100.3: missing"]
    assert _bash(dump + compared.replace("with_extras=0", "with_extras=1")) == [
        "host: p-vx1003 floods 198.51.100.3: missing",
        "host: p-vx1003 floods 198.51.100.9: extra",
    ]
    fact = facts.parse("p-vx1003 floods 198.51.100.9", None, "host")
    assert (fact.kind, fact.remove()) == ("floods", ("fdb", "del", "00:00:00:00:00:00", "dev", "p-vx1003", "dst", "198.51.100.9"))


def test_with_dump_caching_each_place_is_read_once_and_the_root_once_for_what_it_asks() -> None:
    """check.sh compares each step's facts with one snapshot (dump_caching): a namespace's dump taken
    once for every step, the root namespace's once for each set of devices asked (each step read the
    kernel again: 83 s for the seven steps of 1000 namespaces)."""
    script = """
reads=()
eval "reader_$(declare -f kernel_dump)"
kernel_dump() { reads+=("${1:-root}:${*:2}"); reader_kernel_dump "$@"; }
for caching in 0 1; do
  dump_caching=${caching} dump_cache=() reads=()
  kernel_facts ns; first="${kernel[*]}"
  kernel_facts ns; second="${kernel[*]}"
  kernel_facts '' e0; kernel_facts '' e0; kernel_facts '' e0 e1
  echo "caching ${caching}: ${reads[*]}; same: $([[ ${first} == "${second}" && -n ${first} ]] && echo yes)"
done
"""
    assert _bash(script) == [
        "caching 0: ns: ns: root:e0 root:e0 root:e0 e1; same: yes",
        "caching 1: ns: root:e0 root:e0 e1; same: yes",
    ]


def test_without_a_temporary_file_the_dump_comes_through_a_pipe(tmp_path: Path) -> None:
    """The reader's dump goes through a temporary file; with no temporary directory (mktemp fails) or
    a file that cannot hold it (a full disk: /dev/full here), it comes through a pipe, the same facts
    (it once read none, and said every declared fact missing)."""
    show = 'kernel_facts ns; printf "%s\\n" "${kernel[@]}"'
    whole = _bash(show)
    assert "device e1" in whole
    assert _bash(f"TMPDIR={tmp_path / 'none'}\n{show}") == whole
    assert _bash(f"dump_open() {{ dump_files=(/dev/full /dev/full); }}\n{show}") == whole


def test_a_signal_while_the_dump_files_are_made_waits_until_they_are_deleted(tmp_path: Path) -> None:
    """dump_open makes its files with mktemp, then deletes them, kept open: a Ctrl-C between the two
    left them in /tmp. The signal now waits, then runs the shell's own trap."""
    script = f"""
export TMPDIR={tmp_path}
trap 'echo "interrupted: $(ls -A "${{TMPDIR}}" | wc -l) file(s) left"; exit 130' INT
mktemp() {{ kill -s INT $$; command mktemp "$@"; }}  # the signal comes while the first file is made
dump_open
echo "not reached"
"""
    program = "set -Eeuo pipefail\nlab_key=canned\n" + drift.reader() + script
    result = subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=False)
    assert (result.returncode, result.stdout) == (130, "interrupted: 0 file(s) left\n"), result.stderr


def test_odd_link_names_read_as_they_are_or_not_at_all() -> None:
    """A name may start with `@` (`NAME@PEER` is cut at its last @ only after a name); a JSON name
    holding `},{` (where links_text splits the array) is not read, never read as an empty name."""
    dump = "kernel_dump() { echo '7: @x: <BROADCAST,UP> mtu 1500'; echo '8: e2@if9: <UP> mtu 1400'; }\n"
    assert _bash(dump + 'kernel_facts ns; printf "%s\\n" "${kernel[@]}"') == [
        "device @x", "@x up", "@x mtu 1500", "device e2", "e2 up", "e2 mtu 1400",
    ]
    json = '[{"ifindex":1,"ifname":"},{x","flags":["UP"],"mtu":1500},{"ifindex":2,"ifname":"a},{b","mtu":1400}]'
    assert _bash(f"links_text {shlex.quote(json)}") == []
