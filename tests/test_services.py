"""Services: processes a lab starts in its namespaces, awaited, checked, restarted by apply only when
they change, and stopped by teardown with nothing left; for real, with a web server."""

import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import live_labs
import pytest
from conftest import leftovers, nsgen, run

from nsgen.plan import lab_plans
from nsgen.render import lab_files, styles, writing
from nsgen.topology import yaml_file
from nsgen.topology.model import Service
from nsgen.validate import sources
from nsgen.validate.lab import build_lab

SERVER = f"{sys.executable} -m http.server 8080 --bind 10.95.0.1 --directory /"


def _web(command: str = SERVER, extra: list | None = None) -> dict:
    """web serves HTTP on 10.95.0.1:8080 (awaited), and sleeps; client reaches it over a veth."""
    return {
        "name": "web",
        "description": "a web server and a client; $(touch /tmp/nsgen-hostile) `id`",
        "namespaces": {
            "web": {
                "interfaces": {"eth0": {"addresses": ["10.95.0.1/24"]}},
                "run": [{"name": "http", "command": command, "ready": {"tcp": 8080}}, "sleep 600", *(extra or [])],
            },
            "client": {"interfaces": {"eth0": {"addresses": ["10.95.0.2/24"]}}},
        },
        "links": [["web:eth0", "client:eth0"]],
    }


def test_a_service_is_named_by_its_first_word_and_round_trips() -> None:
    lab = build_lab(_web(), "t")
    assert lab.namespace("web").services == (Service("http", SERVER, "tcp:8080", 10), Service("sleep", "sleep 600"))
    assert build_lab(yaml_file.document(lab), "t").namespace("web").services == lab.namespace("web").services


def test_setup_shows_the_command_verbatim_quoted_once_after_the_network_is_up(tmp_path: Path) -> None:
    loaded = sources.from_document(_web(), "t", "t", "p-")
    for style in ("batched", "tutorial"):
        text = lab_files.render(loaded, style)["setup.sh"]
        lab_part = text[: text.index("# === the lab's record")]
        assert f"  start_service p-web http {shlex.quote(SERVER)} tcp:8080 10\n" in lab_part
        assert lab_part.index("start_service") > lab_part.rindex("NSGEN\n" if style == "batched" else "link set dev")
    batches = styles.batched(loaded.lab, lab_plans.setup(loaded.lab))
    assert batches[-1].commands[0] == ("await_batches",)  # every namespace's batch is done first


def _setup(tmp_path: Path, prefix: str, document: dict) -> tuple[sources.LoadedLab, Path]:
    loaded = live_labs.load(document, prefix)
    lab_dir = tmp_path / "lab"
    writing.write(lab_files.render(loaded), lab_dir)
    result = run("bash", lab_dir / "setup.sh")
    assert result.returncode == 0, result.stdout + result.stderr
    return loaded, lab_dir


def _pid(prefix: str, service: str) -> int:
    return int(Path(f"/run/nsgen/{prefix}web/{prefix}web/{service}.pid").read_text())


def _get(prefix: str) -> str:
    """An HTTP GET from client to web's server, with bash alone: the status line."""
    script = 'exec 3<>/dev/tcp/10.95.0.1/8080; printf "GET / HTTP/1.0\\r\\n\\r\\n" >&3; head -n 1 <&3'
    return run("ip", "netns", "exec", f"{prefix}client", "timeout", "5", "bash", "-c", script).stdout.strip()


def _running(pid: int) -> bool:
    """Whether process `pid` runs (a zombie nobody reaped has ended)."""
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


def _in_lab(prefix: str) -> list[str]:
    """The processes still in the lab's namespaces."""
    found = []
    for netns in (f"{prefix}web", f"{prefix}client"):
        found += run("ip", "netns", "pids", netns).stdout.split()
    return found


@pytest.mark.kernel
def test_services_start_ready_survive_an_unrelated_apply_restart_when_changed_and_go_with_teardown(
    tmp_path: Path, prefix: str
) -> None:
    Path("/tmp/nsgen-hostile").unlink(missing_ok=True)
    loaded, lab_dir = _setup(tmp_path, prefix, _web())
    assert _get(prefix) == "HTTP/1.0 200 OK"  # ready means listening: the first request is answered
    http, sleep = _pid(prefix, "http"), _pid(prefix, "sleep")
    assert run("bash", lab_dir / "verify.sh").returncode == 0
    assert not Path("/tmp/nsgen-hostile").exists()  # the description is data, never run

    # an unrelated change (a route): both keep running, with their PIDs
    unrelated = _web()
    unrelated["namespaces"]["client"]["routes"] = [{"to": "10.96.0.0/24", "dev": "eth0"}]
    changed = live_labs.load(unrelated, prefix)
    result = live_labs.apply(loaded, changed, lab_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (_pid(prefix, "http"), _pid(prefix, "sleep")) == (http, sleep)

    # its command changes: only it is restarted, and it answers again
    edited = _web(SERVER + " --protocol HTTP/1.1")
    edited["namespaces"]["client"]["routes"] = unrelated["namespaces"]["client"]["routes"]
    restarted = live_labs.load(edited, prefix)
    result = live_labs.apply(changed, restarted, lab_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "stopping service" in result.stdout
    assert _pid(prefix, "http") != http and _pid(prefix, "sleep") == sleep
    assert _get(prefix) == "HTTP/1.1 200 OK"  # the new command answers

    writing.write(lab_files.render(restarted), lab_dir)
    result = run("bash", lab_dir / "teardown.sh")
    assert result.returncode == 0, result.stderr
    assert f"stopping service {prefix}web/http" in result.stdout
    assert not _running(http) and not _running(sleep)
    assert not Path(f"/run/nsgen/{prefix}web").exists()  # its files went with it
    assert leftovers(prefix) == set()


@pytest.mark.kernel
def test_a_service_that_dies_is_named_by_status_and_verify_and_apply_starts_it_again(tmp_path: Path, prefix: str) -> None:
    extra = [{"name": "flaky", "command": "echo starting; sleep 600; exit 7"}]
    _, lab_dir = _setup(tmp_path, prefix, _web(extra=extra))
    topology = tmp_path / "web.yaml"
    topology.write_text(yaml_file.dump(_web(extra=extra)))
    flaky = _pid(prefix, "flaky")
    children: list[str] = []
    for _ in range(50):  # setup does not wait for a service without `ready:`
        children = run("pgrep", "-g", str(flaky), "-x", "sleep").stdout.split()
        if children:
            break
        run("sleep", "0.1")
    assert run("kill", "-TERM", *children).returncode == 0  # the service's process ends (the shell records it)
    for _ in range(50):
        if Path(f"/run/nsgen/{prefix}web/{prefix}web/flaky.status").exists():
            break
        run("sleep", "0.1")

    status = nsgen("status", topology, "--prefix", prefix)
    assert status.returncode == 1
    assert status.stdout.splitlines()[:3] == [
        "web: service flaky running: different (exited)",
        f"  exit status 7; the end of /run/nsgen/{prefix}web/{prefix}web/flaky.log:",
        "  | starting",
    ]
    assert status.stdout.splitlines()[-1] == "lab web: 1 difference(s)"
    verify = run("bash", lab_dir / "verify.sh")
    assert verify.returncode == 1
    assert "FAIL  web: service flaky running: different (exited)" in verify.stdout

    applied = nsgen("apply", topology, "--prefix", prefix)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "+ web: service flaky: echo starting; sleep 600; exit 7" in applied.stdout
    assert _pid(prefix, "flaky") != flaky
    assert run("bash", lab_dir / "verify.sh").returncode == 0
    assert run("bash", lab_dir / "teardown.sh").returncode == 0
    assert _in_lab(prefix) == [] and leftovers(prefix) == set()


@pytest.mark.kernel
def test_a_service_not_ready_in_time_rolls_the_setup_back_naming_it_and_its_log(tmp_path: Path, prefix: str) -> None:
    slow = {"name": "slow", "command": "echo waiting for nothing; sleep 600", "ready": {"tcp": 9, "timeout": 1}}
    loaded = live_labs.load(_web(extra=[slow]), prefix)
    lab_dir = tmp_path / "lab"
    writing.write(lab_files.render(loaded), lab_dir)
    result = run("bash", lab_dir / "setup.sh")
    assert result.returncode == 1
    assert f"setup.sh: service {prefix}web/slow was not ready (tcp:9) within 1 s; the end of" in result.stderr
    assert "  | waiting for nothing" in result.stderr
    assert "deleting what this run created" in result.stderr
    assert leftovers(prefix) == set() and not Path(f"/run/nsgen/{prefix}web").exists()
    assert run("pgrep", "-f", "echo waiting for nothing").stdout == ""


@pytest.mark.kernel
def test_a_command_runs_exactly_as_written_and_nothing_else_in_the_topology_runs(tmp_path: Path, prefix: str) -> None:
    out = tmp_path / "said"
    marker = tmp_path / "hostile"
    command = f"printf '%s|' \"a'b\" '$HOME' \"$(echo sub)\" > {out}; sleep 600"
    hostile = {"name": "echo", "command": command, "ready": {"file": f"{out}", "timeout": 5}}
    document = _web(extra=[hostile])
    document["description"] = f"$(touch {marker}); `touch {marker}`"
    _, lab_dir = _setup(tmp_path, prefix, document)
    assert out.read_text() == "a'b|$HOME|sub|"
    assert not marker.exists()
    assert run("bash", lab_dir / "teardown.sh").returncode == 0
    assert leftovers(prefix) == set()


@pytest.mark.kernel
def test_a_service_whose_shell_was_killed_is_restarted_once_its_group_is_stopped(tmp_path: Path, prefix: str) -> None:
    _, lab_dir = _setup(tmp_path, prefix, _web())
    topology = tmp_path / "web.yaml"
    topology.write_text(yaml_file.dump(_web()))
    shell = _pid(prefix, "http")
    assert run("kill", "-KILL", str(shell)).returncode == 0  # the server itself lives on, holding the port
    status = nsgen("status", topology, "--prefix", prefix)
    assert status.stdout.startswith("web: service http running: different (exited)")
    applied = nsgen("apply", topology, "--prefix", prefix)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert f"stopping service {prefix}web/http (pid {shell})" in applied.stdout  # the old group, first
    assert _get(prefix) == "HTTP/1.0 200 OK" and _pid(prefix, "http") != shell
    assert run("bash", lab_dir / "teardown.sh").returncode == 0
    assert _in_lab(prefix) == [] and leftovers(prefix) == set()


@pytest.mark.kernel
def test_ctrl_c_on_nsgen_up_waits_for_the_rollback(tmp_path: Path, prefix: str) -> None:
    document = _web()
    document["namespaces"]["web"]["run"] = [{"name": "never", "command": "sleep 600", "ready": {"tcp": 9, "timeout": 60}}]
    topology = tmp_path / "web.yaml"
    topology.write_text(yaml_file.dump(document))
    up = subprocess.Popen(
        [sys.executable, "-m", "nsgen", "up", str(topology), "--prefix", prefix],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    waiting = Path(f"/run/nsgen/{prefix}web/{prefix}web/never.pid")
    for _ in range(300):  # until setup waits for the service that never listens
        if waiting.exists():
            break
        time.sleep(0.1)
    assert waiting.exists(), "setup did not start the service within 30 s"
    time.sleep(0.5)  # into its wait for the port
    up.send_signal(signal.SIGINT)  # to nsgen alone, as `timeout -s INT` does: it passes it on
    out, err = up.communicate(timeout=60)
    assert up.returncode == 130, out + err
    assert "interrupted" in err and "deleting what this run created" in err
    assert leftovers(prefix) == set() and not Path(f"/run/nsgen/{prefix}web").exists()
    assert run("pgrep", "-f", "sleep 600").stdout == ""


@pytest.mark.kernel
def test_down_of_a_lab_that_is_not_up_leaves_another_labs_names_alone(tmp_path: Path, prefix: str) -> None:
    _, lab_dir = _setup(tmp_path, prefix, _web())
    other = tmp_path / "other.yaml"
    other.write_text(yaml_file.dump({**_web(), "name": "other"}))  # the same namespaces, another lab
    down = nsgen("down", other, "--prefix", prefix)
    assert down.returncode == 2
    assert down.stderr == f"other.yaml: lab other is not up, and its names are lab web's (the record /run/nsgen/{prefix}web.yaml): nothing was deleted\n"
    assert f"{prefix}web" in run("ip", "netns", "list").stdout
    assert run("bash", lab_dir / "teardown.sh").returncode == 0


@pytest.mark.kernel
def test_a_service_that_forks_into_the_background_is_named_and_its_daemon_stopped_by_the_rollback(
    tmp_path: Path, prefix: str
) -> None:
    document = _web()
    daemon = "busybox httpd -p 10.95.0.1:8080 -h /"  # without -f: it forks, the child calls setsid
    document["namespaces"]["web"]["run"] = [{"name": "httpd", "command": daemon, "ready": {"tcp": 8080}}]
    loaded = live_labs.load(document, prefix)
    lab_dir = tmp_path / "lab"
    writing.write(lab_files.render(loaded), lab_dir)
    result = run("bash", lab_dir / "setup.sh")
    assert result.returncode == 1
    assert f"setup.sh: service {prefix}web/httpd forked into the background and ended, leaving " in result.stderr
    assert "(busybox): run it in the foreground" in result.stderr
    assert f"stopping what the lab's services left in {prefix}web: " in result.stdout
    assert leftovers(prefix) == set() and not Path(f"/run/nsgen/{prefix}web").exists()
    assert run("pgrep", "-f", daemon).stdout == ""


def _ignored(pid: int) -> int:
    """The signals process `pid` ignores, as a mask (bit n-1: signal n)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigIgn:"):
            return int(line.split()[1], 16)
    raise AssertionError(f"no SigIgn for {pid}")


@pytest.mark.kernel
def test_a_service_restarted_by_an_apply_rollback_still_ends_on_term(tmp_path: Path, prefix: str) -> None:
    loaded, lab_dir = _setup(tmp_path, prefix, _web())
    http = _pid(prefix, "http")
    broken = _web()
    broken["namespaces"]["web"]["run"][0] = {"name": "http", "command": "sleep 600", "ready": {"tcp": 8080, "timeout": 1}}
    result = live_labs.apply(loaded, live_labs.load(broken, prefix), lab_dir)
    assert result.returncode == 1 and "rolled back" in result.stderr, result.stdout + result.stderr
    restarted = _pid(prefix, "http")
    assert restarted != http and _get(prefix) == "HTTP/1.0 200 OK"
    group = [int(pid) for pid in run("pgrep", "-g", str(restarted)).stdout.split()]
    assert group and all(_ignored(pid) & (1 << (signal.SIGINT - 1) | 1 << (signal.SIGTERM - 1)) == 0 for pid in group)
    writing.write(lab_files.render(loaded), lab_dir)
    started = time.monotonic()
    assert run("bash", lab_dir / "teardown.sh").returncode == 0
    assert time.monotonic() - started < 2  # TERM ended it: no KILL after 2 s of grace
    assert leftovers(prefix) == set() and not _running(restarted)


@pytest.mark.kernel
def test_readiness_is_the_services_own_port_not_one_another_process_listens_on(tmp_path: Path, prefix: str) -> None:
    document = _web()
    document["namespaces"]["web"]["run"] = [
        {"name": "http", "command": SERVER, "ready": {"tcp": 8080}},
        {"name": "pretender", "command": "sleep 600", "ready": {"tcp": 8080, "timeout": 1}},
    ]
    with pytest.raises(Exception, match="ready"):  # validation refuses the same port awaited twice
        live_labs.load(document, prefix)
    document["namespaces"]["web"]["run"][0] = SERVER  # the server, not awaited: only the pretender awaits 8080
    loaded = live_labs.load(document, prefix)
    lab_dir = tmp_path / "lab"
    writing.write(lab_files.render(loaded), lab_dir)
    result = run("bash", lab_dir / "setup.sh")
    assert result.returncode == 1, result.stdout
    assert f"service {prefix}web/pretender was not ready (tcp:8080) within 1 s" in result.stderr
    assert leftovers(prefix) == set() and run("pgrep", "-f", SERVER).stdout == ""


@pytest.mark.kernel
def test_ctrl_c_on_nsgen_down_says_what_is_left_and_a_second_down_finishes(tmp_path: Path, prefix: str) -> None:
    document = _web()
    document["namespaces"]["web"]["run"] = ["bash -c \"trap '' TERM; sleep 600\""]  # only KILL ends it: 2 s of grace
    topology = tmp_path / "web.yaml"
    topology.write_text(yaml_file.dump(document))
    up = nsgen("up", topology, "--prefix", prefix)
    assert up.returncode == 0, up.stderr
    down = subprocess.Popen(
        [sys.executable, "-m", "nsgen", "down", str(topology), "--prefix", prefix],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert down.stdout is not None
    assert down.stdout.readline().startswith(f"stopping service {prefix}web/bash")  # in its 2 s of grace
    down.send_signal(signal.SIGINT)
    out, err = down.communicate(timeout=30)
    assert down.returncode == 130, out + err
    assert err.endswith("teardown.sh: interrupted: lab web may be partly deleted; run teardown.sh (nsgen down) again to finish\n")
    again = nsgen("down", topology, "--prefix", prefix)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[-1].startswith("lab web is down")
    assert leftovers(prefix) == set() and _in_lab(prefix) == []


@pytest.mark.kernel
def test_a_service_added_by_apply_is_running_and_holds_none_of_the_readers_files(tmp_path: Path, prefix: str) -> None:
    """A service without `ready:` added by apply: its check straight after the change found it still on
    its way into its namespace, named it exited and rolled the change back (each time, here); it is
    started once it is in it. apply.sh reads the kernel in its own shell (the FORWARD preflight of the
    bridge it adds) before it starts the service: the reader's temporary files (deleted, kept open)
    are closed in the service, as the lock is; it held them for as long as it ran."""
    loaded, lab_dir = _setup(tmp_path, prefix, {"name": "web", "namespaces": {"web": {}}})
    served = {
        "name": "web",
        "bridges": {"br0": {"subnet": "10.95.0.0/24"}},
        "namespaces": {"web": {"run": ["sleep 600"]}},
        "links": [["web:eth0", "br0:w0"]],
    }
    changed = live_labs.load(served, prefix)
    try:
        result = live_labs.apply(loaded, changed, lab_dir)
        assert result.returncode == 0, result.stdout + result.stderr
        pid = _pid(prefix, "sleep")
        held = [link for fd in Path(f"/proc/{pid}/fd").iterdir() if "(deleted)" in (link := str(fd.readlink()))]
        assert held == [], held
    finally:
        writing.write(lab_files.render(changed), lab_dir)
        assert run("bash", lab_dir / "teardown.sh").returncode == 0
    assert leftovers(prefix) == set()
