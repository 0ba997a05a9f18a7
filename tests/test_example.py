"""The example people copy (examples/web.yaml): a web server behind a router, clients on another LAN,
NAT out and a port forwarded in. Its rendered scripts and its recorded demo are committed and current;
for real, inside an emulated host (never this machine's own firewall), its verify passes, the machine's
port reaches the server, and teardown leaves the host as it was."""

import os
import re
import shutil
import sys
from pathlib import Path

import pytest
from conftest import REPO, nsgen
from test_outside import _firewall, _get, _in
from test_recording import KERNEL_PICKED, cast_text

from nsgen.render import lab_files, writing
from nsgen.run.emulated_hosts import Host
from nsgen.validate import sources

EXAMPLE = REPO / "examples" / "web.yaml"
#: What changes from run to run beyond a pair's: a root-namespace device's ifindex, the services' PIDs,
#: the date and Python's version in the web server's answer.
RUN_PICKED = [
    (re.compile(r"^\d+: ", re.M), "N: "),
    (re.compile(r"\(pid \d+\)"), "(pid N)"),
    (re.compile(r"Date: .*"), "Date: D"),
    (re.compile(r"Python/[\d.]+"), "Python/V"),
]


def test_the_committed_example_is_current(tmp_path: Path) -> None:
    result = nsgen("render", EXAMPLE, "-o", REPO / "generated" / "web", "--check")
    assert result.returncode == 0, f"generated/web is stale: run `nsgen render examples/web.yaml -o generated/web`\n{result.stderr}"
    page = nsgen("docs", EXAMPLE, "--cast", REPO / "docs" / "web.cast", "-o", tmp_path / "page")
    assert page.returncode == 0, page.stderr
    assert (tmp_path / "page" / "index.html").read_bytes() == (REPO / "docs" / "web" / "index.html").read_bytes()


@pytest.mark.kernel
def test_the_example_verifies_serves_the_machines_port_and_leaves_the_host_as_it_was(host: Host, tmp_path: Path) -> None:
    before = _firewall(host)
    lab_dir = tmp_path / "web"
    writing.write(lab_files.render(sources.load(EXAMPLE)), lab_dir)  # unprefixed: the host's names are its own
    assert _in(host, "bash", lab_dir / "setup.sh").returncode == 0
    verify = _in(host, "bash", lab_dir / "verify.sh")
    assert verify.returncode == 0, verify.stdout
    assert verify.stdout.splitlines()[-1] == "lab web: 22 passed, 0 failed (its checks)"
    outside = ["ip", "netns", "exec", host.name.removesuffix("h1") + "sw"]
    assert _get(outside, str(host.address.ip), 8080, "/") == "HTTP/1.0 200 OK"
    assert _in(host, "bash", lab_dir / "teardown.sh").returncode == 0
    assert _firewall(host) == before


@pytest.mark.kernel
def test_the_committed_recording_is_what_the_demo_shows_now(host: Host, tmp_path: Path) -> None:
    cast = tmp_path / "web.cast"
    result = _in(host, "env", f"--chdir={tmp_path}", sys.executable, "-m", "nsgen", "record", EXAMPLE, "-o", cast)
    assert result.returncode == 0, result.stdout + result.stderr
    if os.environ.get("NSGEN_RECORD") == "1":  # the committed recording made again, here (then `nsgen docs` it)
        shutil.copyfile(cast, REPO / "docs" / "web.cast")
    texts = [cast_text(cast), cast_text(REPO / "docs" / "web.cast")]
    for pattern, mask in [*KERNEL_PICKED, *RUN_PICKED]:
        texts = [pattern.sub(mask, text) for text in texts]
    stale = "docs/web.cast is stale: run this test with NSGEN_RECORD=1, then `nsgen docs examples/web.yaml --cast docs/web.cast -o docs/web`"
    assert texts[0] == texts[1], stale
    assert "$ start_service web http 'python3 -m http.server 80 --directory /usr/share/doc/iproute2' tcp:80 10" in texts[0]
