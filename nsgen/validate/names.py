"""The names phases: namespaces' and bridges' names, device names the kernel keeps, aliases."""

from nsgen.topology import facts
from nsgen.topology.ends import MACVLAN, ROOT
from nsgen.topology.schema import NETNS_MAX
from nsgen.validate.context import Context, Path

#: The functions the scripts' runtime sections define (a test keeps this list whole).
RUNTIME_FUNCTIONS = """allow_forward await_batch await_batches check delete_lab compare_facts foreign_names await_gone
    in_parallel inside entering kernel_facts dump_open netns_batch record_write refuse report rollback root_batch delete_batch
    run run_heredoc say script_line kernel_parse
    set_sysctl stop_batches report_extras summary stop_processes tc undo unless_foreign within check_tcp check_run stopped
    service_alive accept delete_rules restore_sysctls group_running service_log start_service stop_service parents_there
    stop_started forget_services service_facts typed forward_rule forward_rules_read neighbours_forget
    forward_record_write forward_rules_recorded forward_drops forward_dropping neighbours_held neighbours_spill neighbours_flush
    forward_record_restore record_clash
    forward_preflight forward_report qdisc_preflight iptables kernel_dump drift_add check_started check_read checks_done
    ipv6_ready listens forked ports_preflight repairs interrupted links_text a_few rule_delete rule_add lock_release""".split()

#: Names an alias must not take: shell keywords and builtins, and what the scripts call.
RESERVED_ALIASES = frozenset(
    """if then else elif fi case esac for select while until do done in function time coproc
    alias bg bind break builtin caller cd command compgen complete compopt continue declare dirs disown
    echo enable eval exec exit export false fc fg getopts hash help history jobs kill let local logout
    mapfile popd printf pushd pwd read readarray readonly return set shift shopt source suspend test
    times trap true type typeset ulimit umask unalias unset wait
    bash env ip ping sudo nsenter getconf flock iptables nft sysctl tcpdump
    displayLinks displayAddr displayRoutes lab_steps lab_undo_steps lab_record lab_record_old lab_facts
    lab_facts_old lab_facts_new lab_accepts bridge nsgen_bridge""".split()
    + RUNTIME_FUNCTIONS
)

#: Device names the kernel keeps for itself: every namespace has `lo`; `all` and `default` name the
#: per-device sysctl directories, and the kernel refuses a device of either name.
KERNEL_DEVICE_NAMES = ("lo", "all", "default")


def check_nodes(ctx: Context) -> None:
    """Namespaces and bridges: no namespace named like the root, no bridge named like a namespace, none too long."""
    for word, meaning in ((ROOT, "the root namespace"), (MACVLAN, "a macvlan's parent")):
        if word in ctx.namespaces:
            ctx.problem(["namespaces", word], f"'{word}' names {meaning} in links: choose another name")
    for name in ctx.bridges:
        if name in ctx.namespaces or name in (ROOT, MACVLAN):
            ctx.problem(["bridges", name], f"'{name}' is also a namespace name: link ends would be ambiguous")
    for name in ctx.namespaces:
        if len(ctx.prefix + name) > NETNS_MAX:
            ctx.problem(["namespaces", name], f"namespace name with prefix is longer than {NETNS_MAX} characters")


def check_device(ctx: Context, path: Path, device: str) -> None:
    """A device name the kernel keeps for itself cannot be a lab's (`lo`, `all`, `default`), nor a
    word a fact's line leads with (`route`: `route up` would read as a route)."""
    if device in KERNEL_DEVICE_NAMES:
        ctx.problem(path, f"'{device}' is a name the kernel keeps ({', '.join(KERNEL_DEVICE_NAMES)}): choose another")
    elif device in facts.LEADING:
        ctx.problem(path, f"'{device}' is a word of nsgen's declared state ({', '.join(facts.LEADING)}): choose another")



def check_aliases(ctx: Context) -> None:
    """The guide's helper names: unique, and none the shell's or the scripts' own."""
    owners: dict[str, str] = {}
    for ns in ctx.lab_namespaces:
        path = ["namespaces", ns.name, "alias"]
        if ns.alias in RESERVED_ALIASES:
            ctx.problem(path, f"alias '{ns.alias}' would hide the shell's or the scripts' own '{ns.alias}'")
        elif ns.alias in owners:
            ctx.problem(path, f"alias '{ns.alias}' is already the alias of namespace '{owners[ns.alias]}'")
        owners.setdefault(ns.alias, ns.name)
