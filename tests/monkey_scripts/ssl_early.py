"""ssl imported (and SSLContext taken) before patch_all(): the warning names the module."""
import warnings

from ssl import SSLContext   # a direct reference that patching cannot reach

from stolon import monkey

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    monkey.patch_all()
for warning in caught:
    print(warning.category.__name__, "|", warning.message)
