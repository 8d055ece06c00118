"""``python -m minicnn.exercises list | start NAME | check [NAME ...] | hint NAME | solution NAME [--show]``."""
from __future__ import annotations

import sys

from .. import cli
from . import DEFAULT_DIR, NAMES, check, get, hint, solution, start, status

COMMANDS = {
    "list": "every exercise in the tutorial's order, with your status",
    "start": "write an exercise's stub into your folder (never overwrites)",
    "check": "check your files (all the files in your folder, or the ones named); exit 0 only when all pass",
    "hint": "the next hint of an exercise, one at a time",
    "solution": "where the textbook kernel that solves an exercise is (--show prints its code)",
}


def make_parser():
    p = cli.ArgumentParser(prog="python -m minicnn.exercises",
                           description="Exercises: write minicnn's forward and backward passes, have them checked, "
                                       "then train LeNet-5 on them (python -m minicnn.train lenet5 --kernels DIR).")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    parsers = {name: sub.add_parser(name, help=text, description=text) for name, text in COMMANDS.items()}
    for name in ("start", "hint", "solution"):
        parsers[name].add_argument("name", metavar="NAME", help="an exercise (python -m minicnn.exercises list)")
    parsers["check"].add_argument("names", nargs="*", metavar="NAME", help="exercises to check (default: every file)")
    parsers["check"].add_argument("--timeout", type=cli.number_in(0, 3600, low_open=True), default=30.0,
                                  help="seconds each exercise may run (default: 30)")
    for name in ("list", "start", "check", "hint"):
        parsers[name].add_argument("--dir", default=DEFAULT_DIR, help=f"your folder (default: ./{DEFAULT_DIR})")
    parsers["solution"].add_argument("--show", action="store_true", help="print the code too")
    for q in parsers.values():
        q.error = p.error
        cli.add_debug_option(q)
    return p


def _names(parser, names):
    for n in names:
        try:
            get(n)
        except ValueError as exc:
            parser.error(str(exc))


def run(argv=None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    _names(parser, [args.name] if hasattr(args, "name") else getattr(args, "names", []))

    def body():
        if args.command == "list":
            width = max(map(len, NAMES))
            for i, (exercise, text) in enumerate(status(args.dir), 1):
                print(f"{i:>2}  {exercise.name:<{width}}  ch. {exercise.chapter}  {text:<22}  {exercise.summary}")
            return 0
        if args.command == "start":
            try:
                path = start(args.name, args.dir)
            except FileExistsError as exc:
                raise cli.CommandError(f"{exc.filename} already exists; it was left as it is (check it with: "
                                       f"python -m minicnn.exercises check {args.name})") from exc
            print(f"wrote {path}: open it, write the code, then run python -m minicnn.exercises check {args.name}")
            return 0
        if args.command == "check":
            results = check(args.names, args.dir, args.timeout)
            if not results:
                raise cli.CommandError(f"no exercise files in {args.dir}: start one with "
                                       f"python -m minicnn.exercises start {NAMES[0]}")
            for r in results:
                print(r.line())
            passed = sum(r.passed for r in results)
            if len(results) > 1:
                print(f"{passed} of {len(results)} passing")
            return 0 if passed == len(results) else 1
        if args.command == "hint":
            print(f"{args.name}: {hint(args.name, args.dir)}")
            return 0
        places = solution(args.name)
        print(f"{args.name} ({get(args.name).summary}) is solved in the textbook by:")
        for place in places:
            print(f"  {place.line()}")
            if args.show:
                print("\n" + place.source)
        if not args.show:
            print("(python -m minicnn.exercises solution " + args.name + " --show prints the code)")
        return 0
    return cli.run_reporting(parser.prog, cli.debug_requested(args), body)


def main(argv=None):
    sys.exit(run(argv))


if __name__ == "__main__":
    main()
