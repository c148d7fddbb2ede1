"""``python -m stolon.monkey``: run a script or module after ``patch_all()``."""
import inspect
import sys

__all__ = ["main"]

# patch_all arguments that name a module (the others tune how modules are patched)
_MODULE_OPTIONS = ("socket", "dns", "time", "select", "thread", "os", "ssl", "subprocess",
                   "sys", "builtins", "signal", "queue", "contextvars")


def _patch_all_arguments():
    from stolon.monkey import patch_all
    return [name for name, parameter in inspect.signature(patch_all).parameters.items()
            if parameter.kind is parameter.POSITIONAL_OR_KEYWORD]


def usage():
    """The help text, listing the options."""
    modules = [name for name in _patch_all_arguments() if name in _MODULE_OPTIONS]
    return """stolon.monkey - monkey patch the standard modules to use stolon.

USAGE: ``python -m stolon.monkey [MONKEY OPTIONS] [--module] (script|module) [SCRIPT OPTIONS]``

If no MONKEY OPTIONS are present, monkey patches all the modules as if by calling ``patch_all()``.
You can exclude a module with --no-<module>, e.g. --no-thread. You can
specify a module to patch with --<module>, e.g. --socket. In the latter
case only the modules specified on the command line will be patched.

The default behavior is to execute the script passed as argument. If you wish
to run a module instead, pass the `--module` argument before the module name.

MONKEY OPTIONS: ``--verbose %s``""" % ", ".join("--[no-]%s" % name for name in modules)


def main():
    """Patch (``patch_all()`` with the options given), then run the script (or, after
    ``--module``, the module) named next, with the rest of the command line as its
    ``sys.argv[1:]``, exactly as ``python script.py`` would."""
    from stolon.monkey import patch_all
    argv = sys.argv[1:]
    arguments = _patch_all_arguments()
    options = {}
    verbose = False
    run = "run_path"
    while argv and argv[0].startswith("--"):
        option = argv.pop(0)[2:]
        if option == "verbose":
            verbose = True
        elif option == "module":
            run = "run_module"
        elif option.startswith("no-") and option[3:] in arguments:
            options[option[3:]] = False
        elif option in arguments:
            options[option] = True
            if option in _MODULE_OPTIONS:
                # naming a module patches only the modules named
                for name in _MODULE_OPTIONS:
                    options.setdefault(name, False)
        else:
            sys.exit(usage() + "\n\n" + "Cannot patch %r" % option)
    if verbose:
        import os
        import pprint
        print("stolon.monkey.patch_all(%s)" % ", ".join("%s=%s" % item for item in options.items()))
        print("sys.version=%s" % (sys.version.strip().replace("\n", " "),))
        print("sys.path=%s" % pprint.pformat(sys.path))
        print("sys.modules=%s" % pprint.pformat(sorted(sys.modules)))
        print("cwd=%s" % os.getcwd())
    if not argv:
        print(usage())
        return None
    sys.argv[:] = argv
    patch_all(**options)
    import runpy
    return getattr(runpy, run)(sys.argv[0], run_name="__main__")
