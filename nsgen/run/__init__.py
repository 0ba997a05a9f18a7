"""Stage 5, run: rendered scripts run, running labs found by their records and compared with the
kernel, namespaces entered, demos recorded, and machines emulated for multi-host labs."""
