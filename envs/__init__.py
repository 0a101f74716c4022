"""On-accelerator environments (gymnax 1.0 contract) and the environment registry."""
