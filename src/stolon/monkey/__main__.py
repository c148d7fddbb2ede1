"""``python -m stolon.monkey [options] script|--module module [args]``: see ``main``."""
from stolon.monkey._main import main

main()
