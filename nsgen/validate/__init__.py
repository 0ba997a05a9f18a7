"""Stage 2, validate: a parsed topology document checked by the schema, then by named phases that
each check one kind of rule and complete their part of the model; the result is a complete `Lab`."""
