"""Entry point for ``python -m stolon.bench``."""
from .cli import main

raise SystemExit(main())
