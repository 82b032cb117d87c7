"""The chain and its decisions: body part, then that part's fracture model, and every rule that turns their numbers into a finding."""
