"""``python -m jaxrl``: the ``jaxrl`` command line (see :mod:`jaxrl.scripts.cli`)."""

from jaxrl.scripts.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main())
