# --- nsgen runtime section status.sh: sha256 d0c204ab8933a7c61625023d584568f3dad4d95733101f409f787883a2c67cf1 ---
# status.sh's core, the same in every host's status.sh of this nsgen version (`nsgen runtime
# status.sh` prints it, after the section facts): this host's part of a multi-host lab (lab_facts
# above) compared with the kernel here, what is extra too, as `nsgen status` reads it: one
# difference a line, its fields tab-separated (KIND, NETNS, NODE, LINE, HAVE: drift_rows), then a
# line that says it read everything. It exits 0 whatever it finds: nsgen status, on the controller,
# says what the rows mean.

# --- options

# --- refuse MESSAGE: stop before changing anything, saying why (exit 2: a usage or a precondition)
refuse() { echo "${0##*/}: $1" >&2; exit 2; }

script_args=("$@")
dry_run=0
if (( $# > 0 )); then refuse "takes no option (got '$1')"; fi

# --- run as root (network namespaces need it): re-run through sudo when we are not
if (( ! dry_run )) && [[ ${EUID} -ne 0 ]]; then
  if ! command -v sudo >/dev/null 2>&1; then echo "${0##*/}: must run as root, and sudo was not found" >&2; exit 1; fi
  exec sudo -- bash "$0" "${script_args[@]}"
fi
if ! command -v ip >/dev/null 2>&1; then refuse "'ip' was not found: install iproute2"; fi

with_extras=1
lab_facts
if (( ${#drift_rows[@]} > 0 )); then printf '%s\n' "${drift_rows[@]}"; fi
echo "status.sh: lab ${lab_name}: ${#drift_rows[@]} difference(s) here"
