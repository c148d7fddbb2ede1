"""logging configured before patching keeps working from greenlet threads."""
import logging
import sys

logging.basicConfig(stream=sys.stdout, level=logging.INFO,
                    format="%(threadName)s %(levelname)s %(message)s")

from stolon import monkey

monkey.patch_all()

import threading

log = logging.getLogger("scenario")
print("logging lock", type(logging._lock).__module__)
threads = [threading.Thread(target=log.info, args=("hello %d", n), name="T%d" % n)
           for n in range(3)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
log.warning("from main")
