"""`python -m nsgen` runs the CLI."""

from nsgen.cli import main

main()
