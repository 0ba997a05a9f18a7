"""Stage 6, cli: the `nsgen` command line, thin: each module a group of commands calling the stages."""
