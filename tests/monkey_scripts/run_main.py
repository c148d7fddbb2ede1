"""Run by ``python -m stolon.monkey``: prints what it sees."""
import socket
import sys
import threading

from stolon import monkey

print("name", __name__)
print("argv", sys.argv[1:])
print("patched", monkey.is_module_patched("socket"), monkey.is_module_patched("threading"))
print("main is current", threading.current_thread() is threading.main_thread())
