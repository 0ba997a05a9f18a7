"""`nsgen hosts up|run|down`: emulated hosts on this machine, to try a multi-host lab on one laptop.

Each host is a network namespace with its own mount namespace and /run, an sshd on its underlay
address; a switch namespace joins them and holds the controller's address. The machine's root
namespace is left alone: it has no route to the underlay, so `nsgen hosts run -- COMMAND` runs
COMMAND (ansible-playbook, nsgen up, ssh) in the switch namespace, with Ansible's environment set
for the hosts (root, the throwaway key, the hosts' keys known) where the caller has not set it.
"""

import os
from typing import Annotated, Optional

import typer

from nsgen.run import emulated_hosts

app = typer.Typer(
    help="Emulated hosts on this machine (namespaces with an sshd each), to try a multi-host lab.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

HostsPrefix = Annotated[str, typer.Option(help="Prepended to the hosts' and switch's namespace names.")]
DEFAULT_PREFIX = "emu-"


def _topology_hosts(hosts: list[emulated_hosts.Host]) -> str:
    return "hosts:\n" + "".join(f"  h{index}: {{address: {h.address.ip}}}\n" for index, h in enumerate(hosts, 1))


@app.command("up")
def up_command(
    count: Annotated[int, typer.Argument(help="How many hosts.")] = 3,
    prefix: HostsPrefix = DEFAULT_PREFIX,
) -> None:
    """Start COUNT emulated hosts, each with an sshd on its underlay address (198.51.100.N)."""
    try:
        hosts, access = emulated_hosts.up(prefix, count)
    except (RuntimeError, ValueError) as error:
        typer.echo(f"nsgen hosts up: {error}", err=True)
        raise typer.Exit(2) from None
    for index, host in enumerate(hosts, 1):
        typer.echo(f"h{index}  {host.address.ip}  (namespace {host.name}, sshd as root with {access.key})")
    typer.echo(f"controller {emulated_hosts.CONTROLLER.ip} in namespace {emulated_hosts.switch_netns(prefix)}")
    typer.echo("\n# a topology's hosts: for them")
    typer.echo(_topology_hosts(hosts), nl=False)
    typer.echo(f"\n# run Ansible (or nsgen up FILE) from the controller:\nnsgen hosts run --prefix {prefix} -- nsgen up FILE")


@app.command(
    "run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
def run_command(
    command: Annotated[Optional[list[str]], typer.Argument(help="The command and its arguments, after `--`.")] = None,
    prefix: HostsPrefix = DEFAULT_PREFIX,
) -> None:
    """Run a command on the controller (the switch namespace, which reaches every host), with
    ANSIBLE_REMOTE_USER, ANSIBLE_PRIVATE_KEY_FILE and ANSIBLE_SSH_COMMON_ARGS set for the hosts unless set."""
    recorded = emulated_hosts.found(prefix)
    if recorded is None:
        typer.echo(f"nsgen hosts run: no emulated hosts of prefix '{prefix}' (nsgen hosts up N --prefix {prefix})", err=True)
        raise typer.Exit(2)
    if not command:
        typer.echo("nsgen hosts run: give the command after `--`", err=True)
        raise typer.Exit(2)
    env = {**recorded[1].ansible_env(), **os.environ}
    argv = emulated_hosts.controller_argv(prefix, command)
    os.execvpe(argv[0], argv, env)


@app.command("down")
def down_command(prefix: HostsPrefix = DEFAULT_PREFIX) -> None:
    """Stop the emulated hosts: every process in them (sshd too), their namespaces, their files."""
    there = emulated_hosts.names(prefix)
    emulated_hosts.down(prefix)
    typer.echo(f"emulated hosts of prefix '{prefix}': {'removed ' + ', '.join(there) if there else 'none was there'}")
