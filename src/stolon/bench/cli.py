"""Command line of ``python -m stolon.bench``."""
import argparse
import sys
import time

from . import cases as registry
from . import compare, libs, machine, plot, profiles, report, results, runner
from .progress import Progress


def parse(argv):
    p = argparse.ArgumentParser(
        prog="python -m stolon.bench",
        description="Benchmark stolon against its anchors (greenlet, ...) in the same run "
                    "and print the ratios.")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true",
                      help="about 15 s: fewer, shorter rounds")
    size.add_argument("--full", action="store_true",
                      help="several minutes: for figures you publish")
    p.add_argument("--rounds", type=int, metavar="N",
                   help="timed rounds per library (default by profile; verdicts need >= 5)")
    p.add_argument("--cases", metavar="PATTERN",
                   help="comma-separated; a glob on case names (switch-deep-*) or a substring "
                        "of a name or group (memory)")
    p.add_argument("--list", action="store_true", help="list the cases and exit")
    p.add_argument("--json", metavar="FILE",
                   help="write all results, per-round raw numbers included")
    p.add_argument("--compare", metavar="FILE",
                   help="show the change against a run saved with --json")
    p.add_argument("--plot", metavar="FILE.png",
                   help="draw the ratios as a bar chart (needs matplotlib)")
    p.add_argument("--load", metavar="FILE",
                   help="do not run: report a run saved with --json")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress display on stderr")
    args = p.parse_args(argv)
    if args.rounds is not None and args.rounds < 1:
        p.error("--rounds must be at least 1")
    return args


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    if args.list:
        return list_cases()
    if args.plot:
        missing = plot.require_matplotlib()
        if missing:
            print(f"stolon.bench: {missing}", file=sys.stderr)
            return 2
    old = results.load(args.compare) if args.compare else None

    if args.load:
        run, interrupted = results.load(args.load), False
    else:
        profile = choose_profile(args)
        selected = registry.select(args.cases if args.cases else profile.cases)
        if not selected:
            names = ", ".join(c.name for c in registry.all_cases())
            print(f"stolon.bench: no case matches {args.cases!r}; cases: {names}", file=sys.stderr)
            return 2
        run, interrupted = run_selected(selected, profile, argv, args.quiet)

    print(report.render(run))
    if not write_outputs(run, args, old):
        return 1
    if interrupted:
        return 130
    if not any(res["status"] == "ok" for res in run["cases"]):
        print("stolon.bench: no case could run (see the reasons above)", file=sys.stderr)
        return 1
    return 1 if any(res["status"] == "error" for res in run["cases"]) else 0


def write_outputs(run, args, old):
    """--json, --compare, --plot; False (after saying why) if one failed."""
    try:
        if args.json:
            results.save(run, args.json)
            print(f"wrote {args.json}", file=sys.stderr)
        if old:
            print()
            print(compare.render(old, run, args.compare))
        if args.plot:
            plot.draw(run, args.plot)
            print(f"wrote {args.plot}", file=sys.stderr)
    except (OSError, ValueError) as exc:
        print(f"stolon.bench: {exc}", file=sys.stderr)
        return False
    return True


def choose_profile(args):
    name = "quick" if args.quick else "full" if args.full else "default"
    profile = profiles.PROFILES[name]
    if args.rounds:
        profile = profiles.Profile(**dict(profile.as_dict(), rounds=args.rounds))
    return profile


def run_selected(selected, profile, argv, quiet):
    names = list(dict.fromkeys(n for c in selected for n in c.libraries))
    run = results.new_run(profile, machine.info(), [libs.load(n) for n in names], argv)
    progress = Progress(enabled=not quiet)
    t0, cpu0 = time.perf_counter(), time.process_time()
    interrupted = False
    try:
        # appended case by case, so an interrupt keeps the finished cases
        for index, case in enumerate(selected):
            progress.case_start(index, len(selected), case)
            res = runner.run_case(case, profile, progress)
            progress.case_done(res)
            run["cases"].append(res)
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted: reporting the finished cases", file=sys.stderr)
    finally:
        progress.finish()
    run["seconds"] = time.perf_counter() - t0
    run["cpu_seconds"] = time.process_time() - cpu0  # this process only, not the probes
    return run, interrupted


def list_cases():
    quick = {c.name for c in registry.select(profiles.PROFILES["quick"].cases)}
    default = {c.name for c in registry.select(profiles.PROFILES["default"].cases)}
    for case in registry.all_cases():
        anchors = ", ".join(case.anchors) or "none"
        runs_in = "quick" if case.name in quick else "default" if case.name in default else "full"
        print(f"{case.name:24} {case.title}  [{case.unit}; anchor: {anchors}; from --{runs_in}]"
              .replace("from --default", "by default"))
        if case.about:
            print(f"{'':24} {case.about}")
    return 0
