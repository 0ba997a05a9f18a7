"""`up` means ready, for real: in a dual-stack lab routed through a namespace, the first IPv6 packet a router
forwards is lost while the addresses are tentative (duplicate address detection, about a second after an
interface comes up). Setup says the lab is up only once none is: right after it, no address is tentative, and
verify.sh passes, 20 times of 20."""

import subprocess
from pathlib import Path

import pytest
from conftest import leftovers

from nsgen.render import lab_files, writing
from nsgen.validate import sources

pytestmark = pytest.mark.kernel


def test_verify_straight_after_setup_passes_every_time(tmp_path: Path, prefix: str) -> None:
    labs = []
    for index in range(4):  # four labs side by side, each set up, verified and torn down five times
        loaded = sources.load(preset="router", prefix=f"{prefix[:-1]}{index}", count=1)  # short: its bridges fit 15 bytes
        writing.write(lab_files.render(loaded), tmp_path / str(index))
        labs.append(tmp_path / str(index))
    tentative = 'for ns in "${lab_netns[@]}"; do ip -n "$ns" -6 -o addr show tentative; done'
    script = (
        "source <(sed -n '/^lab_netns=/p' setup.sh); for round in 1 2 3 4 5; do bash setup.sh >/dev/null && "
        f"echo \"tentative: $({tentative} | wc -l)\" && bash verify.sh | tail -n 1; bash teardown.sh >/dev/null; done"
    )
    runs = [subprocess.Popen(["bash", "-c", script], cwd=lab, stdout=subprocess.PIPE, text=True) for lab in labs]
    results = [line for run in runs for line in run.communicate(timeout=300)[0].splitlines()]
    assert results == ["tentative: 0", "lab router: 16 passed, 0 failed (its checks)"] * 20
    assert leftovers(prefix[:-1]) == set()
