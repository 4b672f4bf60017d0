"""`python -m bench.perf prompt|train|rag|parity`: one subcommand per benchmark module.

A subcommand is a module with a docstring (its first line, a one-line summary, is the
subcommand's help), `add_arguments(parser)` and `run(args) -> dict | None`: a dict is printed as
JSON, None means the command printed its own output. Register one by importing it and adding it
to SUBCOMMANDS (the order there is the order `--help` lists them in).
"""

from __future__ import annotations

import argparse
import json
from types import ModuleType

from .. import parity
from . import prompt, rag, train

SUBCOMMANDS: dict[str, ModuleType] = {
    "prompt": prompt,
    "train": train,
    "rag": rag,
    "parity": parity,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.perf",
                                     description="Speed benchmarks behind docs/performance.md; each prints JSON.")
    sub = parser.add_subparsers(dest="what", required=True)
    for name, module in SUBCOMMANDS.items():
        doc = (module.__doc__ or "").strip()
        module.add_arguments(sub.add_parser(name, help=doc.split("\n")[0], description=doc,
                                            formatter_class=argparse.RawDescriptionHelpFormatter))
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    result = SUBCOMMANDS[args.what].run(args)
    if result is not None:
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
