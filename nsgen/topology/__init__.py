"""Stage 1, topology: what a lab is, before anyone checks it: the model (a plain graph), the file
format's schema, reading and writing topology YAML, and the built-in presets."""
