# --- nsgen runtime section accepts: sha256 556c9bdd680dcd08aca165eda78c1e2021ae92da98e5a634e28b94e6de632fb6 ---
# --- forward_rule add|del MATCH...: apply.sh's change of --allow-forward's FORWARD rules (a bridge,
# NAT or a forwarded port that comes or goes), where the running lab has them: an ACCEPT rule with the
# lab's comment in FORWARD, read once by kernel_facts before the first change; else nothing (the lab
# was set up without them). The rule for MATCH inserted first in the chain, or deleted, if need be
# (rule_delete and iptables: the rules section, carried with this one).
forward_rule() {
  local verb=$1 fact kernel=() rule
  shift
  if [[ -z ${forward_rules-} ]]; then
    forward_rules=0
    kernel_facts ''
    if (( ${#accepted_there[@]} > 0 )); then forward_rules=1; fi
    for fact in "${kernel[@]}"; do
      if [[ ${fact} == "iptables -t filter -A FORWARD "*" -j ACCEPT" ]]; then forward_rules=1; fi
    done
  fi
  if (( ! forward_rules )); then return 0; fi
  rule=(FORWARD "$@" -m comment --comment "nsgen:${lab_key}" -j ACCEPT)
  if [[ ${verb} == del ]]; then
    rule_delete -w -D "${rule[@]}"
  elif (( dry_run )) || ! command iptables -w -C "${rule[@]}" 2>/dev/null; then
    iptables -w -I "${rule[@]}"
  fi
}
