# === nsgen runtime: sha256 382ce74afcaa04fab1fe82cdb6fdb7ffe0ae935dfc011727eff6a570655a8c26 ===
# demo.sh's runtime, the same in every lab's demo.sh of this nsgen version (`nsgen runtime demo.sh`
# prints it). Each step of the lab above (lab_steps) shows its comment, then its command after a
# prompt, typed out, then runs it for real. If any of the lab is there already it stops before
# changing anything; whenever it ends, on a failed step or a signal too, it deletes what it created.

# --- options
#   --allow-forward: where the FORWARD chain drops bridged traffic, accept the lab's (one rule per bridge)
#   --delay SECONDS: the typing delay per character (default: $NSGEN_TYPING_DELAY, else 0.04; 0 types at once)

script_args=("$@")
dry_run=0
allow_forward=0
delay=${NSGEN_TYPING_DELAY:-0.04}
while (( $# > 0 )); do
  case $1 in
    --allow-forward) allow_forward=1 ;;
    --delay=*) delay=${1#*=} ;;
    --delay) if (( $# > 1 )); then delay=$2; shift; else delay=''; fi ;;
    *) echo "${0##*/}: unknown option '$1' (known: --delay, --allow-forward)" >&2; exit 2 ;;
  esac
  shift
done
if [[ ! ${delay} =~ ^[0-9]+(\.[0-9]+)?$ ]]; then
  echo "${0##*/}: the typing delay is in seconds, like 0.04 (got '${delay}')" >&2
  exit 2
fi

# --- run as root (network namespaces need it): re-run through sudo when we are not
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

# --- one setup, apply, demo or teardown of this lab at a time: a second one fails at once (flock)
if (( ! dry_run )) && command -v flock >/dev/null 2>&1; then
  exec {lock_fd}>"/run/nsgen-${lab_key}.lock"
  if ! flock -n "${lock_fd}"; then
    echo "${0##*/}: lab ${lab_name} is busy: another run holds /run/nsgen-${lab_key}.lock" >&2
    exit 3
  fi
fi

# --- what of the lab is there already, and which of its root-namespace subnets overlap a route of
# the root namespace (a route inside them, or around them other than the default: traffic would go
# astray). /run/netns holds the named namespaces, /sys/class/net the root namespace's devices.
present=()
for ns in "${lab_netns[@]}"; do
  if [[ -e /run/netns/${ns} ]]; then present+=("namespace ${ns}"); fi
done
for dev in "${lab_devices[@]}"; do
  if [[ -e /sys/class/net/${dev} ]]; then present+=("device ${dev}"); fi
done
overlaps=()
for net in "${lab_root_networks[@]}"; do
  while read -r dst _; do
    if [[ ${dst} != default ]]; then overlaps+=("${net} overlaps the route ${dst}"); fi
  done < <(command ip -o route show root "${net}"; command ip -o route show match "${net}")
done

# --- preflight: nothing of the lab may be there, and its subnets overlap no route of the root
# namespace (setup.sh sets a lab up over an overlap with --force)
if (( ${#present[@]} > 0 )); then
  echo "${0##*/}: lab ${lab_name} is already there: ${present[*]} (run teardown.sh first)" >&2
  exit 2
fi
if (( ${#overlaps[@]} > 0 )); then
  echo "${0##*/}: ${overlaps[0]} of the root namespace" >&2
  exit 2
fi

# --- bridged traffic and the FORWARD policy. With bridge netfilter on
# (net.bridge.bridge-nf-call-iptables=1), frames between two ports of a bridge pass the FORWARD
# chain; where its policy is DROP (Docker sets it), a lab on a bridge comes up and its namespaces
# cannot reach each other. forward_drop says what drops them, as `iptables -S FORWARD` shows it
# (iptables-nft or legacy, whichever `iptables` is), else, without iptables, `nft list ruleset` (a
# chain on the forward hook with policy drop); empty when nothing drops them, the lab has no
# bridge, or neither tool is here to tell.
forward_comment="nsgen:${lab_key}"
forward_drop=''
forward_added=()
bridge_nf=0
if (( ${#lab_bridges[@]} > 0 )) && [[ -r /proc/sys/net/bridge/bridge-nf-call-iptables ]]; then
  read -r bridge_nf </proc/sys/net/bridge/bridge-nf-call-iptables || bridge_nf=0
fi
if [[ ${bridge_nf} == 1 ]]; then
  if command -v iptables >/dev/null 2>&1; then
    forward_policy=''
    read -r forward_policy < <(command iptables -w -S FORWARD 2>/dev/null) || true
    if [[ ${forward_policy} == '-P FORWARD DROP' ]]; then
      forward_drop="the FORWARD chain's policy is DROP (iptables -S FORWARD)"
    fi
  elif command -v nft >/dev/null 2>&1; then
    nft_table='' nft_chain=''
    while read -r nft_line; do
      case ${nft_line} in
        'table '*) nft_table=${nft_line#table }; nft_table=${nft_table% \{} ;;
        'chain '*) nft_chain=${nft_line#chain }; nft_chain=${nft_chain% \{} ;;
        *'hook forward '*'policy drop;'*)
          if [[ ${nft_table} == ip\ * || ${nft_table} == inet\ * ]]; then
            forward_drop="the chain ${nft_chain} of the nft table ${nft_table} (hook forward) has policy drop (nft list ruleset)"
            break
          fi ;;
      esac
    done < <(command nft list ruleset 2>/dev/null)
  fi
fi

# --- forward_explain: why the lab's bridged traffic would be dropped, and the ways out
forward_explain() {
  local bridges=${lab_bridges[*]}
  {
    echo "${0##*/}: lab ${lab_name}: traffic between the namespaces on its bridges (${bridges}) would be dropped."
    echo "  Bridge netfilter is on (net.bridge.bridge-nf-call-iptables=1): frames between two ports of a bridge"
    echo "  pass the FORWARD chain, and here ${forward_drop}: Docker sets it so, as do some firewalls."
    echo "  The lab would come up, and its pings would go unanswered. Nothing was changed. Ways out:"
    echo "    --allow-forward  insert per lab bridge BR: iptables -I FORWARD -i BR -o BR -m comment --comment ${forward_comment} -j ACCEPT"
    echo "                     (teardown.sh deletes exactly the rules carrying that comment)"
  } >&2
}

# --- allow_forward: with --allow-forward, where FORWARD drops bridged traffic, one ACCEPT rule per
# lab bridge for frames between its ports, first in the chain; forward_added lists the bridges this
# run added a rule for (a rule already there is left alone)
allow_forward() {
  local br rule
  if (( ! allow_forward )) || [[ -z ${forward_drop} ]]; then return; fi
  for br in "${lab_bridges[@]}"; do
    rule=(FORWARD -i "${br}" -o "${br}" -m comment --comment "${forward_comment}" -j ACCEPT)
    if (( dry_run )); then
      printf 'iptables -w -I'
      printf ' %q' "${rule[@]}"
      printf '\n'
    elif ! command iptables -w -C "${rule[@]}" 2>/dev/null; then
      command iptables -w -I "${rule[@]}"
      forward_added+=("${br}")
    fi
  done
}
# --- forget_forward: delete the rules this run added
forget_forward() {
  local br
  for br in "${forward_added[@]}"; do
    command iptables -w -D FORWARD -i "${br}" -o "${br}" -m comment --comment "${forward_comment}" -j ACCEPT 2>/dev/null || true
  done
  forward_added=()
}

# --- preflight: bridged traffic must pass (unless --allow-forward); a dry run
# explains and goes on. --allow-forward's rules are iptables rules: without iptables they are yours to add.
if [[ -n ${forward_drop} ]]; then
  if (( allow_forward )) && ! command -v iptables >/dev/null 2>&1; then
    echo "${0##*/}: ${forward_drop}, and --allow-forward adds iptables rules, but iptables was not found:" >&2
    echo "  accept the lab's bridges there yourself (nft insert rule TABLE CHAIN iifname BR oifname BR accept)," >&2
    echo "  then set the lab up with setup.sh --force" >&2
    exit 2
  fi
  if (( ! allow_forward )); then
    forward_explain
    if (( ! dry_run )); then exit 2; fi
    echo "dry run: a real run would stop here" >&2
  fi
fi

# --- pause SECONDS: sleep with bash alone (a read that times out on a pipe nobody writes to)
exec {pause_fd}<> <(:)
pause() { read -rt "$1" -u "${pause_fd}" || true; }

# --- delete_lab [FOREIGN]: delete what of the lab is there, but FOREIGN, and wait (10 s at most)
# until the kernel has let go of its devices (`ip netns del` returns before they are destroyed).
# Preflight found nothing of the lab, so all of it is this run's, but the name a failing
# `ip … add NAME` could not take from someone else: FOREIGN.
delete_lab() {
  local foreign=${1-} ns dev
  for ns in "${lab_netns[@]}"; do
    if [[ ${ns} != "${foreign}" && -e /run/netns/${ns} ]]; then command ip netns del "${ns}" || true; fi
  done
  for dev in "${lab_devices[@]}"; do
    if [[ ${dev} != "${foreign}" && -e /sys/class/net/${dev} ]]; then command ip link del dev "${dev}" 2>/dev/null || true; fi
  done
  for _ in {1..100}; do
    for dev in "${lab_devices[@]}"; do
      if [[ ${dev} != "${foreign}" && -e /sys/class/net/${dev} ]]; then pause 0.1; continue 2; fi
    done
    break
  done
}
# --- foreign_name COMMAND: the name COMMAND makes, if it makes one (`netns add X`, `link add name X`)
foreign_name() {
  if [[ $1 =~ ^(ip\ )?(netns\ add|link\ add\ name)\ ([^ ]+) ]]; then echo "${BASH_REMATCH[3]}"; fi
}
# --- script_line N: line N of this script, to name the step that was running
script_line() {
  local step='' n=0
  while IFS= read -r step && (( ++n < $1 )); do :; done <"$0" || true
  echo "${step#"${step%%[![:space:]]*}"}"
}

# --- finish STATUS WHAT: whenever the demo ends, on a failed step or a signal too, name the step
# that failed and delete what of the lab is left, and the FORWARD rules it added
step=''
finish() {
  local foreign=''
  set +e
  trap - ERR INT TERM HUP EXIT
  if (( $1 != 0 )); then
    echo "${0##*/}: $2: ${step}" >&2
    foreign=$(foreign_name "${step}")
  fi
  delete_lab "${foreign}"
  forget_forward
  exit "$1"
}
trap 'finish "$?" failed' ERR
trap 'finish 130 interrupted' INT
trap 'finish 143 terminated' TERM
trap 'finish 129 "hung up"' HUP
trap 'finish "$?" failed' EXIT

# --- the demo's look: colours only on a terminal
if [[ -t 1 ]]; then
  prompt=$'\e[1;32m$\e[0m ' comment=$'\e[36m' plain=$'\e[0m'
else
  prompt='$ ' comment='' plain=''
fi
# --- say LINE...: a step's comment, as the scripts write it
say() {
  local line mark='# --- '
  echo
  for line in "$@"; do
    printf '%s%s%s%s\n' "${comment}" "${mark}" "${line}" "${plain}"
    mark='# '
  done
}
# --- run [--fails] COMMAND...: a prompt and COMMAND, typed out at ${delay} s a character, then
# COMMAND run for real; with --fails it must fail (a ping the topology expects no answer to).
# run --show TEXT: TEXT typed out, and nothing run (the script runs it next: a function definition)
run() {
  local fails=0 i
  if [[ $1 == --fails ]]; then fails=1; shift; fi
  if [[ $1 == --show ]]; then step=$2; else printf -v step '%q ' "$@"; step=${step% }; fi
  printf '%s' "${prompt}"
  if [[ ${delay} =~ ^0*\.?0*$ ]]; then
    printf '%s' "${step}"
  else
    for (( i = 0; i < ${#step}; i++ )); do
      printf '%s' "${step:i:1}"
      pause "${delay}"
    done
  fi
  printf '\n'
  if [[ $1 == --show ]]; then
    return
  elif (( ! fails )); then
    "$@"
  elif "$@"; then
    echo "${0##*/}: an answer came, and the topology expects none" >&2
    return 1
  fi
}

# --- set_sysctl NETNS KEY VALUE: `sysctl -w KEY=VALUE` inside NETNS (the root namespace when
# NETNS is empty), with bash alone
set_sysctl() {
  if [[ -n $1 ]]; then
    # shellcheck disable=SC2016  # the single quotes are the inner bash's script: it expands $1 and $2
    ip netns exec "$1" bash -c 'echo "$2" >"/proc/sys/${1//.//}"' set_sysctl "$2" "$3"
  elif (( dry_run )); then
    echo "set_sysctl '' $2 $3"
  else
    echo "$3" >"/proc/sys/${2//.//}"
  fi
}

# --- displayLinks, displayAddr: every namespace's links (addresses), then the lab's root-namespace
# devices' (helpers.sh defines them too, with the lab's aliases)
display() {
  local ns dev
  for ns in "${lab_netns[@]}"; do
    echo "--- netns ${ns} ---"
    ip netns exec "${ns}" ip "$1"
  done
  if (( ${#lab_devices[@]} > 0 )); then
    echo '--- root namespace: the lab devices ---'
    for dev in "${lab_devices[@]}"; do ip "$1" show dev "${dev}"; done
  fi
}
displayLinks() { display link; }
displayAddr() { display addr; }

allow_forward
lab_steps
step=''
echo
echo "lab ${lab_name}: demo done"
