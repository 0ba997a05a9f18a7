"""`python -m nsgen` runs the CLI."""

from nsgen.cli.app import main

main()
