# === nsgen runtime: sha256 414dec5e2f33d8f662b45b4a84d0fa1111afb31c7b8a33cd40cbc112661c3bee ===
# verify.sh's runtime, the same in every lab's verify.sh of this nsgen version (`nsgen runtime
# verify.sh` prints it): it checks that the lab is there, then runs its checks (lab_steps above),
# one line each, ok or FAIL, and exits 1 if any fails.

# --- options
#   --dry-run: print the commands this script would run, and change nothing

script_args=("$@")
dry_run=0
while (( $# > 0 )); do
  case $1 in
    --dry-run) dry_run=1 ;;
    *) echo "${0##*/}: unknown option '$1' (known: --dry-run)" >&2; exit 2 ;;
  esac
  shift
done

# --- run as root (network namespaces need it): re-run through sudo when we are not (a dry
# run needs no root)
if (( ! dry_run )) && [[ ${EUID} -ne 0 ]]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "${0##*/}: must run as root, and sudo was not found" >&2
    exit 1
  fi
  exec sudo -- bash "$0" "${script_args[@]}"
fi
for tool in ip ping; do
  if ! command -v "${tool}" >/dev/null 2>&1; then
    echo "${0##*/}: '${tool}' was not found: install iproute2 and iputils-ping" >&2
    exit 2
  fi
done

# --- in a dry run, `ip` prints itself (with what a batch feeds it) instead of running: every
# change this script makes goes through `ip`; what only reads the kernel says `command ip`
if (( dry_run )); then
  ip() {
    local line
    printf 'ip'
    printf ' %q' "$@"
    printf '\n'
    if [[ " $* " == *" -batch - "* ]]; then
      while IFS= read -r line; do printf '    %s\n' "${line}"; done
    fi
  }
fi

# --- every namespace and root-namespace device of the lab must be there
missing=()
for ns in "${lab_netns[@]}"; do
  if [[ ! -e /run/netns/${ns} ]]; then missing+=("namespace ${ns}"); fi
done
for dev in "${lab_devices[@]}"; do
  if [[ ! -e /sys/class/net/${dev} ]]; then missing+=("device ${dev}"); fi
done
if (( ! dry_run && ${#missing[@]} > 0 )); then
  echo "FAIL  lab ${lab_name}: missing ${missing[*]} (run setup.sh)"
  exit 1
fi

# --- report RESULT NETNS ADDRESS HOLDER: one line per check, counted
passed=0
failed=0
report() {
  printf '%-5s %s -> %s (%s)\n' "$1" "$2" "$3" "$4"
  if [[ $1 == ok ]]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
}
# --- check NETNS FAMILY ADDRESS HOLDER: one ping from NETNS to ADDRESS must get an answer
check() {
  if (( dry_run )); then ip netns exec "$1" ping -"$2" -c 1 -W 2 "$3"; return; fi
  if ip netns exec "$1" ping -"$2" -c 1 -W 2 "$3" >/dev/null 2>&1; then report ok "$1" "$3" "$4"; else report FAIL "$1" "$3" "$4"; fi
}
# --- check_unreachable NETNS FAMILY ADDRESS HOLDER: one ping must get no answer within 1 s
check_unreachable() {
  if (( dry_run )); then ip netns exec "$1" ping -"$2" -c 1 -W 1 "$3"; return; fi
  if ip netns exec "$1" ping -"$2" -c 1 -W 1 "$3" >/dev/null 2>&1; then report FAIL "$1" "$3" "$4"; else report ok "$1" "$3" "$4"; fi
}

lab_steps
if (( dry_run )); then
  echo "dry run: nothing was pinged"
  exit 0
fi
echo "lab ${lab_name}: ${passed} passed, ${failed} failed"
(( failed == 0 ))
