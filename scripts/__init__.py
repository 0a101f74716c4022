"""Entry points: command line, presets, reproduction, benchmarks (all I/O lives here)."""
