"""Reaching a multi-host lab's host over SSH as Ansible would connect: the inventory's address, user,
port and key (the topology's `ansible:` variables), else Ansible's environment (ANSIBLE_REMOTE_USER,
ANSIBLE_REMOTE_PORT, ANSIBLE_PRIVATE_KEY_FILE, ANSIBLE_SSH_COMMON_ARGS, ANSIBLE_SSH_EXTRA_ARGS,
ANSIBLE_HOST_KEY_CHECKING, ANSIBLE_TIMEOUT). Settings only an ansible.cfg holds are not read.
"""

import os
import shlex
from collections.abc import Mapping

from nsgen.topology.model import Machine

#: An inventory variable and, after it, its older names, as Ansible reads them.
_VARIABLES = {
    "host": ("ansible_host", "ansible_ssh_host"),
    "user": ("ansible_user", "ansible_ssh_user"),
    "port": ("ansible_port", "ansible_ssh_port"),
    "key": ("ansible_ssh_private_key_file", "ansible_private_key_file"),
    "common": ("ansible_ssh_common_args",),
    "extra": ("ansible_ssh_extra_args",),
}
_ENVIRONMENT = {
    "user": "ANSIBLE_REMOTE_USER",
    "port": "ANSIBLE_REMOTE_PORT",
    "key": "ANSIBLE_PRIVATE_KEY_FILE",
    "common": "ANSIBLE_SSH_COMMON_ARGS",
    "extra": "ANSIBLE_SSH_EXTRA_ARGS",
}


def _setting(machine: Machine, name: str, environ: Mapping[str, str]) -> str:
    variables = dict(machine.ansible)
    for variable in _VARIABLES[name]:
        if variable in variables:
            return str(variables[variable])
    return environ.get(_ENVIRONMENT.get(name, ""), "") if name != "host" else str(machine.address)


def ssh_argv(machine: Machine, command: list[str], tty: bool = False, environ: Mapping[str, str] | None = None) -> list[str]:
    """`ssh` to `machine` running `command` there (quoted for its shell); with `tty`, on a terminal."""
    environ = os.environ if environ is None else environ
    argv = ["ssh", "-o", f"ConnectTimeout={environ.get('ANSIBLE_TIMEOUT') or 10}", "-t" if tty else "-T"]
    if port := _setting(machine, "port", environ):
        argv += ["-p", port]
    if key := _setting(machine, "key", environ):
        argv += ["-i", os.path.expanduser(key)]
    if environ.get("ANSIBLE_HOST_KEY_CHECKING", "").lower() in ("false", "no", "0", "off"):
        argv += ["-o", "StrictHostKeyChecking=no"]
    argv += shlex.split(_setting(machine, "common", environ)) + shlex.split(_setting(machine, "extra", environ))
    user = _setting(machine, "user", environ)
    target = f"{user}@{_setting(machine, 'host', environ)}" if user else _setting(machine, "host", environ)
    return [*argv, "--", target, shlex.join(command)]
