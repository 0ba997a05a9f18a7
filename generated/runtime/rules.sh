# --- nsgen runtime section rules: sha256 f099896f7c57c515adb859ae0b2504822e74f5f00112c5218cb63c13eb43244a ---
# --- iptables ARGS: the lab's rules (its NAT, its forwarded ports, --allow-forward's) as iptables
# takes them; a dry run prints them instead
iptables() {
  if (( dry_run )); then echo "iptables$(printf ' %q' "$@")"; return 0; fi
  command iptables "$@"
}
# --- rule_delete ARGS, rule_add ARGS: the rule of `iptables ARGS` (ARGS with -D, or -A) deleted if
# it is there, added if it is not: a rollback's, whose change may have stopped before it deleted or
# added the rule
rule_delete() {
  if (( ! dry_run )) && ! command iptables "${@/#-D/-C}" 2>/dev/null; then return 0; fi
  iptables "$@"
}
rule_add() {
  if (( ! dry_run )) && command iptables "${@/#-A/-C}" 2>/dev/null; then return 0; fi
  iptables "$@"
}
# --- forward_record: a file that says the lab has --allow-forward's FORWARD rules, there while it
# has them (setup.sh writes it as it adds them, apply.sh once a change has them, delete_rules deletes
# it with them): where it is, every rule of the lab's not there is missing, even the only one
forward_record=/run/nsgen/${lab_key}.forward
forward_record_had=0  # whether it was there as the script started
if [[ -e ${forward_record} ]]; then forward_record_had=1; fi
# --- forward_record_write: forward_record written (the lab has --allow-forward's rules)
forward_record_write() {
  if (( dry_run )); then return 0; fi
  mkdir -p /run/nsgen
  echo "lab ${lab_name} has --allow-forward's FORWARD rules (iptables -S FORWARD, comment nsgen:${lab_key})" >"${forward_record}"
}
# --- forward_record_restore (an undone hook, apply.sh's rollback): forward_record as the script found
# it (the change's delete_rules deleted it with the rules the rollback puts back)
forward_record_restore() {
  if (( forward_record_had )) && [[ ! -e ${forward_record} ]]; then forward_record_write; fi
}
undone_hooks+=(forward_record_restore)
# --- delete_rules (a cleanup hook): the iptables rules carrying the lab's comment (its NAT, its
# forwarded ports, --allow-forward's FORWARD rules, and their forward_record), and only those: each
# rule `iptables -t TABLE -S` prints with it, deleted by the same words (iptables-nft prints the
# comment in double quotes, legacy iptables bare). How many is added to what teardown.sh says it
# deleted (deleted_beyond).
rules_deleted=0
delete_rules() {
  local table words i ours
  if (( ! dry_run )); then rm -f "${forward_record}"; fi
  if ! type -P iptables >/dev/null; then return 0; fi
  for table in filter nat; do
    while read -ra words; do
      ours=0
      for (( i = 1; i < ${#words[@]}; i++ )); do
        if [[ ${words[i]} == '"'*'"' ]]; then words[i]=${words[i]:1:-1}; fi
        if [[ ${words[i - 1]} == --comment && ${words[i]} == "nsgen:${lab_key}" ]]; then ours=1; fi
      done
      if [[ ${words[0]-} != -A ]] || (( ! ours )); then continue; fi
      words[0]=-D
      if (( dry_run )); then
        printf 'iptables -w -t %s' "${table}"
        printf ' %q' "${words[@]}"
        printf '\n'
      else
        command iptables -w -t "${table}" "${words[@]}" || true
      fi
      rules_deleted=$((rules_deleted + 1))
    done < <(command iptables -w -t "${table}" -S 2>/dev/null)
  done
  if (( rules_deleted > 0 )); then deleted_beyond+=("${rules_deleted} iptables rule(s)"); fi
}
cleanup_hooks+=(delete_rules)
