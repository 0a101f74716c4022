"""Entry points: command line, presets, reproduction, benchmarks (all I/O lives here)."""

if __name__ != "jaxrl.scripts":  # the repo folder scripts/ imported under its folder name
    raise ImportError(
        "scripts/ is the package jaxrl.scripts: write `from jaxrl import scripts` "
        "(or `import jaxrl.scripts`), not `import scripts`"
    )
