"""jaxrl: JAX-native, purely functional reinforcement learning (core package)."""

__version__ = "0.1.0"
