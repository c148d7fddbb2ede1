"""A second patch_all() with other arguments warns and only adds patches."""
import warnings

from stolon import monkey

monkey.patch_all(thread=False, socket=False)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    monkey.patch_all(thread=False)
print("patched socket", monkey.is_module_patched("socket"))
print("thread untouched", monkey.is_module_patched("threading"))
for warning in caught:
    print(warning.category.__name__, warning.message, warning.filename.endswith("warnings_twice.py"))
