# --- nsgen runtime section forward: sha256 ba17eda68fe4d741deab94a41df3119ca6df1a9785b21d44ea3b0549ea010335 ---
# --- the FORWARD chain. With bridge netfilter on (bridge-nf-call-iptables=1), frames between two
# ports of a bridge pass FORWARD, and so does the traffic a lab's NAT and forwarded ports route
# through the root namespace; where FORWARD drops it (Docker sets its policy to DROP) the lab comes
# up and its traffic goes unanswered. forward_drop names what drops it (forward_dropping); empty
# when nothing does (or the lab sends nothing there).
forward_drop=''
forward_drop6=''  # what drops the lab's bridged IPv6 (ip6tables' FORWARD): --allow-forward adds no rule there
dropped6=()  # the lab's bridges with IPv6 (lab_bridges6) whose IPv6 it drops
forward_added=()
forward_allowed=0
dropped=()  # what of the lab FORWARD would drop
bridge_nf=0  # whether bridged frames pass iptables' FORWARD (net.bridge.bridge-nf-call-iptables)
# --- forward_drops IPTABLES: what in IPTABLES' (iptables or ip6tables) FORWARD chain drops every
# packet (chain_drop, empty where nothing does): its policy DROP, or a rule that drops or rejects all
# (`-A FORWARD -j REJECT --reject-with icmp-host-prohibited`, a RHEL firewall's last); and the lab
# bridges accepted before it (chain_accepted: `-A FORWARD -i BR -o BR -j ACCEPT`, as a user adds them)
forward_drops() {
  local line name
  chain_drop='' chain_accepted=()
  while IFS= read -r line; do
    case ${line} in
      '-P FORWARD DROP') chain_drop="the FORWARD chain's policy is DROP ($1 -S FORWARD)" ;;
      '-A FORWARD -j DROP' | '-A FORWARD -j REJECT' | '-A FORWARD -j REJECT '*)
        chain_drop="the FORWARD chain has a rule that drops every packet, \`${line}\` ($1 -S FORWARD)"
        return 0 ;;
      *)
        for name in "${lab_bridges[@]}"; do
          if [[ ${line} == "-A FORWARD -i ${name} -o ${name} -j ACCEPT" ]]; then chain_accepted+=("${name}"); fi
        done ;;
    esac
  done < <(command "$1" -w -S FORWARD 2>/dev/null)
}
# --- forward_dropping: what FORWARD would drop of the lab (dropped, dropped6) and what drops it
# (forward_drop: iptables' FORWARD, else, without iptables, an nft chain on the forward hook of
# policy drop; forward_drop6: ip6tables', for the bridges with IPv6 it does not accept first)
forward_dropping() {
  local what kind name rest nft_table='' nft_chain='' chain_drop chain_accepted
  if (( ${#lab_bridges[@]} > 0 )) && [[ -r /proc/sys/net/bridge/bridge-nf-call-iptables ]]; then
    read -r bridge_nf </proc/sys/net/bridge/bridge-nf-call-iptables || bridge_nf=0
  fi
  if [[ ${bridge_nf} == 1 ]]; then dropped+=("traffic between the namespaces on its bridges (${lab_bridges[*]})"); fi
  if (( ${#lab_outside[@]} > 0 )); then
    printf -v what '%s, ' "${lab_outside[@]}"
    dropped+=("its traffic to and from the outside (${what%, })")
  fi
  if (( ${#dropped[@]} > 0 )) && type -P iptables >/dev/null; then
    forward_drops iptables
    forward_drop=${chain_drop}
  elif (( ${#dropped[@]} > 0 )) && command -v nft >/dev/null 2>&1; then
    while read -r kind name rest; do
      case ${kind} in
        table) nft_table="${name} ${rest% \{}" ;;
        chain) nft_chain=${name} ;;
        type) if [[ ${rest} == *'hook forward '*'policy drop;'* && ${nft_table} =~ ^(ip|inet)\  ]]; then
          forward_drop="the chain ${nft_chain} of the nft table ${nft_table} (hook forward) has policy drop (nft list ruleset)"
          break
        fi ;;
      esac
    done < <(command nft list ruleset 2>/dev/null)
  fi
  if (( ${#lab_bridges6[@]} > 0 )) && type -P ip6tables >/dev/null \
    && [[ -r /proc/sys/net/bridge/bridge-nf-call-ip6tables && $(</proc/sys/net/bridge/bridge-nf-call-ip6tables) == 1 ]]; then
    forward_drops ip6tables
    if [[ -n ${chain_drop} ]]; then
      for name in "${lab_bridges6[@]}"; do
        if [[ " ${chain_accepted[*]} " != *" ${name} "* ]]; then dropped6+=("${name}"); fi
      done
    fi
    if (( ${#dropped6[@]} > 0 )); then forward_drop6=${chain_drop}; fi
  fi
}
# --- forward_preflight FORCE ALLOW_FORWARD (a preflight hook): the lab's traffic must pass FORWARD
# (forward_dropping), unless ALLOW_FORWARD (--allow-forward: its IPv4 rules) or FORCE (setup.sh's or
# apply.sh's --force) is 1 (FORCE empty: the script has no such --force): each of what drops its
# IPv4 and its IPv6 is said; a dry run explains and goes on. The lab's NAT and forwarded ports, and
# --allow-forward's rules, are iptables rules: without iptables, they are the user's to add.
forward_preflight() {
  local what stop=0
  forward_allowed=$2
  forward_dropping
  if (( ${#lab_outside[@]} > 0 )) && ! type -P iptables >/dev/null; then
    refuse "the lab's NAT and forwarded ports are iptables rules, and iptables was not found"
  elif [[ -n ${forward_drop} ]] && (( forward_allowed )) && ! type -P iptables >/dev/null; then
    refuse "${forward_drop}, and --allow-forward adds iptables rules, but iptables was not found: accept the lab's bridges there yourself (nft insert rule TABLE CHAIN iifname BR oifname BR accept), then run setup.sh --force"
  fi
  printf -v what '%s and ' "${dropped[@]}"
  if [[ -n ${forward_drop} ]] && (( ! forward_allowed )) && [[ $1 == 1 ]]; then
    echo "${0##*/}: --force: ${forward_drop}, and it drops ${what% and }" >&2
  elif [[ -n ${forward_drop} ]] && (( ! forward_allowed )); then
    stop=1
    {
      echo "${0##*/}: lab ${lab_name}: ${what% and } would be dropped."
      echo "  Those pass the FORWARD chain:"
      if [[ ${bridge_nf} == 1 ]]; then
        echo "    frames between a bridge's ports, where bridge netfilter is on (net.bridge.bridge-nf-call-iptables=1)"
      fi
      if (( ${#lab_outside[@]} > 0 )); then echo "    traffic routed through the root namespace (its NAT, its forwarded ports)"; fi
      echo "  and here ${forward_drop}. Nothing was changed. Ways out:"
      echo "    --allow-forward  insert the lab's ACCEPT rules first in FORWARD, with the comment nsgen:${lab_key}"
      if [[ ${bridge_nf} == 1 ]]; then
        echo "                     (teardown.sh deletes exactly the rules carrying it), e.g. per lab bridge BR:"
        echo "                     iptables -I FORWARD -i BR -o BR -m comment --comment nsgen:${lab_key} -j ACCEPT"
      else
        echo "                     (teardown.sh deletes exactly the rules carrying it)"
      fi
      if [[ $1 == 0 ]]; then echo "    --force          go on as it is, that traffic dropped"; fi
    } >&2
  fi
  if [[ -n ${forward_drop6} && $1 == 1 ]]; then
    echo "${0##*/}: --force: IPv6 between the namespaces on its bridges (${dropped6[*]}) is dropped: ${forward_drop6}" >&2
  elif [[ -n ${forward_drop6} ]]; then
    stop=1
    what="lab ${lab_name}: IPv6 between the namespaces on its bridges (${dropped6[*]}) would be dropped: bridge netfilter"
    what+=" passes it to ip6tables (net.bridge.bridge-nf-call-ip6tables=1), and there ${forward_drop6}."
    what+=" --allow-forward adds iptables (IPv4) rules only. Nothing was changed: accept it yourself first"
    what+=" (ip6tables -I FORWARD -i BR -o BR -j ACCEPT, for each bridge BR)${1:+, or use --force to go on as it is}"
    echo "${0##*/}: ${what}" >&2
  fi
  if (( stop && ! dry_run )); then exit 2; fi
  if (( stop )); then echo "dry run: a real run would stop here" >&2; fi
}
# --- ports_preflight FORCE (a preflight hook): no port the lab forwards (lab_ports, PROTO:PORT) is
# one the machine itself serves, a socket of its root namespace listening on it (TCP) or bound to it
# (UDP): the lab's DNAT would hide that server from other machines. FORCE 1 (a script's --force):
# said, and forwarded anyway.
ports_preflight() {
  local entry hex serving file address state served=() what
  for entry in "${lab_ports[@]}"; do
    printf -v hex '%04X' "${entry#*:}"
    serving=07  # a UDP socket bound to the port; a TCP one listening on it
    if [[ ${entry} == tcp:* ]]; then serving=0A; fi
    for file in "/proc/net/${entry%%:*}" "/proc/net/${entry%%:*}6"; do
      while read -r _ address _ state _; do
        if [[ ${address##*:} == "${hex}" && ${state} == "${serving}" ]]; then served+=("${entry/:/ port }"); break 2; fi
      done <"${file}" 2>/dev/null || true
    done
  done
  if (( ${#served[@]} == 0 )); then return 0; fi
  printf -v what '%s, ' "${served[@]}"
  what="the lab forwards ${what%, }, which this machine serves already (ss -lntup shows what): other machines would reach the lab instead"
  if [[ $1 == 1 ]]; then echo "${0##*/}: --force: ${what}" >&2; return 0; fi
  if (( dry_run )); then echo "${0##*/}: ${what}; a real run would stop here" >&2; return 0; fi
  refuse "${what}. Nothing was changed: forward another port${1:+, or use --force to forward it anyway}"
}
# --- allow_forward (a start hook): with --allow-forward, where FORWARD drops the lab's traffic, its
# ACCEPT rules (lab_accepts: accept MATCH... each), first in the chain, with the lab's comment (a
# rule already there is left alone; delete_rules deletes them), and forward_record says so
accept() {
  if (( ! dry_run )) && command iptables -w -C FORWARD "$@" -m comment --comment "nsgen:${lab_key}" -j ACCEPT 2>/dev/null; then
    return 0
  fi
  iptables -w -I FORWARD "$@" -m comment --comment "nsgen:${lab_key}" -j ACCEPT
  forward_added+=("$*")
}
allow_forward() {
  if (( ! forward_allowed )) || [[ -z ${forward_drop} ]]; then return 0; fi
  lab_accepts
  forward_record_write
}
# --- forward_report (a done hook): the rules it added
forward_report() {
  if (( ${#forward_added[@]} > 0 )); then
    echo "FORWARD accepts the lab's traffic: ${#forward_added[@]} iptables rule(s) with the comment nsgen:${lab_key} (teardown.sh deletes them)"
  fi
}
preflight_hooks+=(forward_preflight ports_preflight)
start_hooks+=(allow_forward)
done_hooks+=(forward_report)
