# === nsgen runtime: sha256 c685307166f587a418cbbc28de5ab5100a9450825f7c3d456484787150965e06 ===
# verify.sh's runtime, the same in every lab's verify.sh of this nsgen version (`nsgen runtime
# verify.sh` prints it): it checks that the lab is there, then its declared state (lab_expect
# above), then runs its checks (lab_steps above), one line each, ok or FAIL, and exits 1 if any fails.

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
  if ! command -v sudo >/dev/null 2>&1; then echo "${0##*/}: must run as root, and sudo was not found" >&2; exit 1; fi
  exec sudo -- bash "$0" "${script_args[@]}"
fi
tools=(ip ping)
for tool in "${tools[@]}"; do
  if ! command -v "${tool}" >/dev/null 2>&1; then echo "${0##*/}: '${tool}' was not found: install iproute2 and iputils-ping" >&2; exit 2; fi
done

# --- in a dry run, `ip` (with what a batch feeds it) and `iptables` print themselves instead of
# running: every change this script makes goes through them; what only reads says `command ip`
if (( dry_run )); then
  ip() {
    local line
    echo "ip$(printf ' %q' "$@")"
    if [[ " $* " == *" -batch - "* ]]; then
      while IFS= read -r line; do printf '    %s\n' "${line}"; done
    fi
  }
  iptables() { echo "iptables$(printf ' %q' "$@")"; }
fi

# --- every namespace and root-namespace device of the lab must be there
missing=()
for ns in "${lab_netns[@]}"; do
  if [[ ! -e /run/netns/${ns} ]]; then missing+=("namespace ${ns}"); fi
done
for dev in "${lab_devices[@]}"; do
  if [[ ! -e /sys/class/net/${dev} ]]; then missing+=("device ${dev}"); fi
done

# --- expect_*: the lab's declared state (lab_expect above), checked with `ip -o` alone.
# `expect_netns NETNS NODE` (or `expect_root all`, `expect_root only DEV...`) reads where the next lines look, once (the root
# namespace: all of it, or DEV... only); each line then
# checks one object. Each difference is one line in `drift` (`ns-0: route default via 10.0.0.1:
# missing`); a missing namespace or device is one line, what it holds is not checked.
drift=()
expect_node='' expect_netns_name='' expect_skip=0 expect_routes6=0
declare -A have_flags=() have_mtu=() have_master=() have_mac=() have_addr=() gone_dev=()
have_routes=()
expect_read() {
  local line dev
  have_flags=() have_mtu=() have_master=() have_mac=() have_addr=() gone_dev=() have_routes=()
  expect_routes6=0
  while IFS= read -r line; do
    if [[ ${line} =~ ^[0-9]+:\ ([^:@\ ]+)(@[^:]*)?:\ \<([^>]*)\>\ mtu\ ([0-9]+) ]]; then
      dev=${BASH_REMATCH[1]}
      have_flags[${dev}]=",${BASH_REMATCH[3]},"
      have_mtu[${dev}]=${BASH_REMATCH[4]}
      if [[ ${line} =~ \ master\ ([^ ]+) ]]; then have_master[${dev}]=${BASH_REMATCH[1]}; fi
      if [[ ${line} =~ link/ether\ ([0-9a-f:]+) ]]; then have_mac[${dev}]=${BASH_REMATCH[1]}; fi
    elif [[ ${line} =~ ^[0-9]+:\ ([^\ ]+)\ +inet6?\ ([^\ ]+) ]]; then
      have_addr["${BASH_REMATCH[1]} ${BASH_REMATCH[2]}"]=1
    elif [[ -n ${line} ]]; then
      have_routes+=("${line}")
    fi
  done < <(expect_commands "$@" | command ip ${expect_netns_name:+-n "${expect_netns_name}"} -o -force -batch - 2>/dev/null)
}
# what expect_read asks `ip -batch`: everything, or (DEV...) those devices only
expect_commands() {
  local dev
  if (( $# == 0 )); then printf 'addr show\nroute show\nlink show\n'; return 0; fi
  # every `addr show` first: in a batch, one after a `link show` shows links
  for dev in "$@"; do printf 'addr show dev %s\n' "${dev}"; done
  for dev in "$@"; do printf 'link show dev %s\n' "${dev}"; done
}
drift_report() { drift+=("$1: $2"); }
expect_netns() {
  expect_netns_name=$1 expect_node=$2 expect_skip=0
  if [[ ! -e /run/netns/$1 ]]; then
    drift_report "$2: namespace" missing
    expect_skip=1
    return 0
  fi
  expect_read
}
expect_root() {
  expect_netns_name='' expect_node=host expect_skip=0
  shift  # `all` devices, or `only` the ones named after it
  expect_read "$@"
}
# --- expect_device DEV, expect_up DEV, expect_addr DEV CIDR, expect_mtu DEV MTU, expect_mac DEV MAC,
# expect_master DEV BRIDGE, expect_route 'DEST [via GATEWAY] [dev DEV]', expect_sysctl KEY VALUE
expect_device() {
  if (( expect_skip )); then return 0; fi
  if [[ -z ${have_mtu[$1]-} ]]; then drift_report "${expect_node}: device $1" missing; gone_dev[$1]=1; fi
}
expect_gone() { (( expect_skip )) || [[ -n ${gone_dev[$1]-} ]]; }
expect_up() {
  if expect_gone "$1"; then return 0; fi
  if [[ ${have_flags[$1]-} != *,UP,* ]]; then drift_report "${expect_node}: $1 up" "different (down)"; fi
}
expect_addr() {
  if expect_gone "$1"; then return 0; fi
  if [[ -z ${have_addr["$1 $2"]-} ]]; then drift_report "${expect_node}: $1 address $2" missing; fi
}
expect_mtu() {
  if expect_gone "$1"; then return 0; fi
  if [[ ${have_mtu[$1]-} != "$2" ]]; then drift_report "${expect_node}: $1 mtu $2" "different (${have_mtu[$1]-})"; fi
}
expect_mac() {
  if expect_gone "$1"; then return 0; fi
  if [[ ${have_mac[$1]-} != "$2" ]]; then drift_report "${expect_node}: $1 mac $2" "different (${have_mac[$1]-})"; fi
}
expect_master() {
  if expect_gone "$1"; then return 0; fi
  if [[ ${have_master[$1]-} != "$2" ]]; then
    drift_report "${expect_node}: $1 master $2" "different (${have_master[$1]:-no master})"
  fi
}
expect_route() {
  local want line i found=0
  if (( expect_skip )); then return 0; fi
  read -ra want <<<"$1"
  if [[ $1 == *:* ]] && (( ! expect_routes6 )); then
    expect_routes6=1
    while IFS= read -r line; do have_routes+=("${line}"); done < <(
      command ip ${expect_netns_name:+-n "${expect_netns_name}"} -o -6 route show 2>/dev/null)
  fi
  for line in "${have_routes[@]}"; do
    if [[ ${line%% *} != "${want[0]}" ]]; then continue; fi
    found=1
    for (( i = 1; i + 1 < ${#want[@]}; i += 2 )); do
      if [[ " ${line} " != *" ${want[i]} ${want[i + 1]} "* ]]; then found=0; break; fi
    done
    if (( found )); then return 0; fi
  done
  drift_report "${expect_node}: route $1" missing
}
expect_sysctl() {
  local have
  if (( expect_skip )); then return 0; fi
  # shellcheck disable=SC2016  # the single quotes are the inner bash's script: it expands $1
  have=$(command ip netns exec "${expect_netns_name}" bash -c 'read -r v <"/proc/sys/${1//.//}" && echo "${v}"' \
    expect_sysctl "$1" 2>/dev/null) || true
  if [[ ${have} != "$2" ]]; then drift_report "${expect_node}: sysctl $1=$2" "different (${have:-unreadable})"; fi
}

# --- the declared state first (lab_expect above): each difference is one FAIL line (not when
# none of the lab is there); a lab not all there is not pinged
drifted=0
if (( ! dry_run && ${#missing[@]} < ${#lab_netns[@]} + ${#lab_devices[@]} )); then
  lab_expect
  for line in "${drift[@]}"; do printf 'FAIL  %s\n' "${line}"; done
  drifted=${#drift[@]}
  if (( drifted == 0 )); then echo "ok    lab ${lab_name}: every declared object is there"; fi
fi
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
# --- check reachable|unreachable HOLDER ip netns exec NETNS ping … ADDRESS: the ping must get an
# answer (reachable) or none; one line, ok or FAIL (in a dry run, the ping is printed)
check() {
  local got=unreachable
  if (( dry_run )); then "${@:3}"; return; fi
  if "${@:3}" >/dev/null 2>&1; then got=reachable; fi
  if [[ ${got} == "$1" ]]; then report ok "$6" "${*: -1}" "$2"; else report FAIL "$6" "${*: -1}" "$2"; fi
}

lab_steps
if (( dry_run )); then
  echo "dry run: nothing was pinged"
  exit 0
fi
echo "lab ${lab_name}: ${passed} passed, ${failed} failed"
if (( drifted > 0 )); then echo "lab ${lab_name}: ${drifted} declared object(s) missing or different"; fi
(( failed == 0 && drifted == 0 ))
