# --- nsgen runtime section forward: sha256 d53d181cb3d08513fad23b1237f5397ad3b290ecd9d40120dc6c75a6e9e3f3f7 ---
# --- the FORWARD chain. With bridge netfilter on (bridge-nf-call-iptables=1), frames between two
# ports of a bridge pass FORWARD, and so does the traffic a lab's NAT and forwarded ports route
# through the root namespace; where FORWARD drops it (Docker sets its policy to DROP) the lab comes
# up and its traffic goes unanswered. forward_drop names what drops it: iptables' policy, else (no
# iptables) an nft chain on the forward hook; empty when nothing does (or the lab sends nothing there).
forward_drop=''
forward_drop6=''  # what drops the lab's bridged IPv6 (ip6tables' FORWARD): --allow-forward adds no rule there
dropped6=()  # the lab's bridges whose IPv6 it drops
forward_added=()
forward_allowed=0
dropped=()  # what of the lab FORWARD would drop
# --- forward_drops IPTABLES: what in IPTABLES' (iptables or ip6tables) FORWARD chain drops every
# packet, if anything: its policy DROP, or a rule that drops or rejects all (`-A FORWARD -j REJECT
# --reject-with icmp-host-prohibited`, a RHEL firewall's last): --allow-forward's rules go before it
forward_drops() {
  local line
  while IFS= read -r line; do
    case ${line} in
      '-P FORWARD DROP') echo "the FORWARD chain's policy is DROP ($1 -S FORWARD)"; return 0 ;;
      '-A FORWARD -j DROP' | '-A FORWARD -j REJECT' | '-A FORWARD -j REJECT '*)
        echo "the FORWARD chain has a rule that drops every packet, \`${line}\` ($1 -S FORWARD)"; return 0 ;;
    esac
  done < <(command "$1" -w -S FORWARD 2>/dev/null)
}
# --- forward_preflight FORCE ALLOW_FORWARD (a preflight hook): the lab's NAT and forwarded ports are
# iptables rules; its traffic must pass FORWARD, unless ALLOW_FORWARD (--allow-forward) or FORCE
# (setup.sh's or apply.sh's --force) is 1 (FORCE empty: the script has no such --force); a dry run explains and goes
# on. --allow-forward's rules are iptables rules: without iptables, they are the user's to add.
forward_preflight() {
  local bridge_nf=0 what kind name rest nft_table='' nft_chain=''
  forward_allowed=$2
  if (( ${#lab_bridges[@]} > 0 )) && [[ -r /proc/sys/net/bridge/bridge-nf-call-iptables ]]; then
    read -r bridge_nf </proc/sys/net/bridge/bridge-nf-call-iptables || bridge_nf=0
  fi
  if [[ ${bridge_nf} == 1 ]]; then dropped+=("traffic between the namespaces on its bridges (${lab_bridges[*]})"); fi
  # the same frames' IPv6, where the lab has IPv6: ip6tables' FORWARD, which --allow-forward's rules leave
  # alone; a bridge accepted there first (ip6tables -I FORWARD -i BR -o BR -j ACCEPT) is not dropped
  if (( lab_ipv6 && ${#lab_bridges[@]} > 0 )) && type -P ip6tables >/dev/null \
    && [[ -r /proc/sys/net/bridge/bridge-nf-call-ip6tables && $(</proc/sys/net/bridge/bridge-nf-call-ip6tables) == 1 ]]; then
    forward_drop6=$(forward_drops ip6tables)
    for name in "${lab_bridges[@]}"; do
      if ! command ip6tables -w -C FORWARD -i "${name}" -o "${name}" -j ACCEPT 2>/dev/null; then dropped6+=("${name}"); fi
    done
    if (( ${#dropped6[@]} == 0 )); then forward_drop6=''; fi
  fi
  if (( ${#lab_outside[@]} > 0 )); then
    printf -v what '%s, ' "${lab_outside[@]}"
    dropped+=("its traffic to and from the outside (${what%, })")
  fi
  if (( ${#dropped[@]} > 0 )) && type -P iptables >/dev/null; then
    forward_drop=$(forward_drops iptables)
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

  if (( ${#lab_outside[@]} > 0 )) && ! type -P iptables >/dev/null; then
    refuse "the lab's NAT and forwarded ports are iptables rules, and iptables was not found"
  elif [[ -n ${forward_drop6} && $1 == 1 ]]; then
    echo "${0##*/}: --force: IPv6 between the namespaces on its bridges (${dropped6[*]}) is dropped: ${forward_drop6}" >&2
  elif [[ -n ${forward_drop6} ]]; then
    what="lab ${lab_name}: IPv6 between the namespaces on its bridges (${dropped6[*]}) would be dropped: bridge netfilter"
    what+=" passes it to ip6tables (net.bridge.bridge-nf-call-ip6tables=1), and there ${forward_drop6}."
    what+=" --allow-forward adds iptables (IPv4) rules only. Nothing was changed: accept it yourself first"
    what+=" (ip6tables -I FORWARD -i BR -o BR -j ACCEPT, for each bridge BR)${1:+, or use --force to go on as it is}"
    if (( dry_run )); then echo "${0##*/}: ${what}; a real run would stop here" >&2; else refuse "${what}"; fi
  elif [[ -n ${forward_drop} ]] && (( forward_allowed )) && ! type -P iptables >/dev/null; then
    refuse "${forward_drop}, and --allow-forward adds iptables rules, but iptables was not found: accept the lab's bridges there yourself (nft insert rule TABLE CHAIN iifname BR oifname BR accept), then run setup.sh --force"
  elif [[ -n ${forward_drop} ]] && (( ! forward_allowed )) && [[ $1 == 1 ]]; then
    printf -v what '%s and ' "${dropped[@]}"
    echo "${0##*/}: --force: ${forward_drop}, and it drops ${what% and }" >&2
  elif [[ -n ${forward_drop} ]] && (( ! forward_allowed )); then
    {
      printf -v what '%s and ' "${dropped[@]}"
      echo "${0##*/}: lab ${lab_name}: ${what% and } would be dropped."
      if [[ ${bridge_nf} == 1 ]]; then
        echo "  Those pass the FORWARD chain (bridged frames where bridge netfilter is on,"
        echo "  net.bridge.bridge-nf-call-iptables=1), and here ${forward_drop}. Nothing was changed. Ways out:"
      else
        echo "  Routed through the root namespace, it passes the FORWARD chain, and here ${forward_drop}."
        echo "  Nothing was changed. Ways out:"
      fi
      echo "    --allow-forward  insert the lab's ACCEPT rules first in FORWARD, with the comment nsgen:${lab_key}"
      echo "                     (teardown.sh deletes exactly the rules carrying it)${lab_bridges[0]:+, e.g. per lab bridge BR:}"
      if (( ${#lab_bridges[@]} > 0 )); then
        echo "                     iptables -I FORWARD -i BR -o BR -m comment --comment nsgen:${lab_key} -j ACCEPT"
      fi
      if [[ $1 == 0 ]]; then echo "    --force          go on as it is, that traffic dropped"; fi
    } >&2
    if (( ! dry_run )); then exit 2; fi
    echo "dry run: a real run would stop here" >&2
  fi
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
