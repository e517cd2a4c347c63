"""What a user writes, validated: the pydantic schema, the YAML loader, distributions, load profiles,
derived seeds, and the work a scenario will take (its limits)."""
