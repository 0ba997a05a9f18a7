# --- nsgen runtime section parents: sha256 c62d523d6d883c2260f24dbd75e0a437205be26653f9a3dde7ef425c199ea9fd ---
# --- parents_there (a preflight hook): each macvlan's parent (lab_parents) is a device of the root
# namespace, or nothing is made. The lab never changes a parent, nor deletes it.
parents_there() {
  local dev
  for dev in "${lab_parents[@]}"; do
    if ! command ip link show dev "${dev}" >/dev/null 2>&1; then
      refuse "macvlan parent '${dev}' is no device of this machine: nothing was made"
    fi
  done
}
preflight_hooks+=(parents_there)
