"""Stage 3, plan: what a lab's scripts do, as typed steps of argv commands (setup, teardown, verify,
a change from one lab to another), and what the lab declares (reachability, declared state)."""
