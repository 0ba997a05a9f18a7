"""What demo.sh and the guide's demo parts print on a terminal (see templates/runtime/_terminal.sh.j2), for those
who read their casts."""

#: Before each command demo.sh types, and at the start of each comment line it shows.
PROMPT, COMMENT = "\x1b[1;32m$\x1b[0m ", "\x1b[36m#"
#: The start of a step's first comment line: what follows is the step's label.
STEP = COMMENT + " --- "
