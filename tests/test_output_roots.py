"""A directory of the machine's given as the output (`/`, `/proc`, `/usr`) is refused in one line, at once:
nsgen judges a directory it did not write by its first entry that is not nsgen's, without walking it."""

import pytest
from conftest import nsgen


@pytest.mark.parametrize("directory", ["/", "/proc", "/usr", "/etc"])
def test_a_machine_directory_is_refused_in_one_line_at_once(directory: str) -> None:
    result = nsgen("render", "-o", directory)  # walking / or /proc ended in a traceback (PermissionError)
    assert result.returncode == 2
    assert result.stderr == f"nsgen render: {directory}: not empty, and nsgen did not write it (no .nsgen-manifest): give a new or empty directory\n"
