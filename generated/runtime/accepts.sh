# --- nsgen runtime section accepts: sha256 42b1a38f355cd55a19b49cb4e37d1d390890094a289893fb6e093ed0e3f9c1fd ---
# --- forward_rules_read FORCE ALLOW_FORWARD (the first preflight hook, before anything changes):
# whether the lab has --allow-forward's rules: the running lab has some (an ACCEPT rule with the
# lab's comment in FORWARD, read by kernel_facts, or its forward_record), or apply.sh was given --allow-forward. Those found
# stand for the option: the forward section's preflight, after it, is told so. forward_rule follows
# them, and so does a rollback, even after the change deleted them all.
forward_rules=0 forward_asked=0 forward_found=0
declare -A forward_inserted=()  # the matches forward_rule has inserted
forward_rules_read() {
  local fact kernel=()
  forward_asked=$2
  kernel_facts ''
  if (( ${#accepted_there[@]} > 0 )) || [[ -e ${forward_record} ]]; then forward_found=1; fi
  for fact in "${kernel[@]}"; do
    if [[ ${fact} == "iptables -t filter -A FORWARD "*" -j ACCEPT" ]]; then forward_found=1; fi
  done
  forward_rules=$(( forward_asked || forward_found ))
  allow_forward=${forward_rules}
}
preflight_hooks=(forward_rules_read "${preflight_hooks[@]}")
# --- forward_rules_recorded (a ready hook): the changed lab has --allow-forward's rules (the new
# topology has some, lab_accepted, and the lab had them or was given --allow-forward): its forward_record says so
forward_rules_recorded() {
  if (( forward_found && ${#lab_accepted[@]} > 0 )); then forward_record_write; fi
}
ready_hooks+=(forward_rules_recorded)
# --- forward_rule add|del MATCH...: apply.sh's change of --allow-forward's FORWARD rules (a bridge,
# NAT or a forwarded port that comes or goes), where the running lab had them as it started; else
# nothing (the lab was set up without them). The rule for MATCH inserted first in the chain, or
# deleted, if need be (rule_delete and iptables: the rules section, carried with this one).
forward_rule() {
  local verb=$1 rule match words
  shift
  if (( ! forward_rules )); then return 0; fi
  # given --allow-forward, a lab that had none of these rules: as setup.sh, only where FORWARD drops
  # (forward_drop, the forward section's), and then, at the first, every rule the new lab has
  # (lab_accepted), not only the change's (set up with --force, its old bridges had none)
  if (( ! forward_found )) && [[ -z ${forward_drop-} ]]; then return 0; fi
  if [[ ${verb} == add ]] && (( ! forward_found )); then
    forward_found=1
    for match in "${!lab_accepted[@]}"; do
      read -ra words <<<"${match}"
      forward_rule add "${words[@]}"
    done
  fi
  rule=(FORWARD "$@" -m comment --comment "nsgen:${lab_key}" -j ACCEPT)
  if [[ ${verb} == del ]]; then
    rule_delete -w -D "${rule[@]}"
    unset 'forward_inserted[$*]'
    return 0
  fi
  if [[ -z ${forward_inserted[$*]-} ]] && { (( dry_run )) || ! command iptables -w -C "${rule[@]}" 2>/dev/null; }; then
    iptables -w -I "${rule[@]}"
  fi
  forward_inserted[$*]=1  # (a dry run prints each once)
}
