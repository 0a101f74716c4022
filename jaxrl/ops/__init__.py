"""Pure, unbatched RL operators (one topic per module); see each module's docstring."""
