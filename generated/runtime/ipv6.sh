# --- nsgen runtime section ipv6: sha256 29dd376c9e0b362334aea524280fced3b6b6bd0fcb5a666cd81ce6b57cc3e626 ---
# --- ipv6_ready (a ready hook): wait, 5 s at most, until no IPv6 address in the lab's namespaces
# (lab_netns) is tentative. Right after an interface comes up, the kernel checks that its addresses
# are unique (duplicate address detection, about a second); until then a router has no link-local
# source to ask for a neighbour's MAC, and the first packet it forwards is lost
ipv6_ready() {
  local ns tries
  for (( tries = 0; tries < 50; tries++ )); do
    for ns in "${lab_netns[@]}"; do
      if [[ -n $(command ip -n "${ns}" -6 addr show tentative 2>/dev/null) ]]; then sleep 0.1; continue 2; fi
    done
    return 0
  done
  echo "${0##*/}: IPv6 addresses still tentative after 5 s (duplicate address detection)" >&2
}
ready_hooks+=(ipv6_ready)
