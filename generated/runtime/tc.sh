# --- nsgen runtime section tc: sha256 c0b3b9aa574a9d756da3a5f3b66558fd3c7d1be3614c231d8b81c059df2d2dae ---
# --- qdisc_preflight FORCE (a preflight hook): the qdiscs the lab's links need (lab_qdiscs), each
# probed in a network namespace of its own that goes with the probe (unshare, from util-linux). A
# kind the kernel lacks stops the run, naming the links that need it; with FORCE 1 (a script's
# --force) they come up without those conditions, and it says which (FORCE empty: the script has no
# such --force). tc() runs the lab's `tc`: in a dry run it prints it.
qdiscs_missing=()
qdisc_preflight() {
  local kind probe needs line message
  for kind in "${lab_qdiscs[@]}"; do
    probe=("${kind}")
    if [[ ${kind} == tbf ]]; then probe=(tbf rate 1mbit burst 16kb latency 50ms); fi
    # (a dry run without root cannot probe: it takes the qdisc to be there)
    if (( EUID == 0 )) && command -v unshare >/dev/null 2>&1 && ! unshare --net tc qdisc add dev lo root "${probe[@]}" 2>/dev/null; then
      qdiscs_missing+=("${kind}")
    fi
  done
  for kind in "${qdiscs_missing[@]}"; do
    needs=''
    for line in "${lab_conditions[@]}"; do if [[ ${line%% *} == "${kind}" ]]; then needs+="${needs:+; }${line#* }"; fi; done
    message="no ${kind} qdisc in this kernel (sch_${kind}), needed by: ${needs}. Load it (modprobe sch_${kind})"
    if [[ $1 == 1 ]]; then echo "${0##*/}: --force: ${message/. Load it*/}: going on without them" >&2; continue; fi
    if [[ $1 == 0 ]]; then message+=", or use --force to go on without them"; fi
    if (( ! dry_run )); then refuse "${message}"; fi
    echo "${0##*/}: ${message} (dry run: a real run would stop here)" >&2
  done
}
tc() {
  local kind
  if (( dry_run )); then echo "tc$(printf ' %q' "$@")"; return 0; fi
  for kind in "${qdiscs_missing[@]}"; do
    if [[ " $* " == *" root ${kind} "* ]]; then return 0; fi
  done
  command tc "$@"
}
preflight_hooks+=(qdisc_preflight)
