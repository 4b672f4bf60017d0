"""`python -m bench.perf SUBCOMMAND`: one subcommand per benchmark module (prompt, train, rag, ...).

A subcommand is a module with a docstring (its first line, a one-line summary, is the
subcommand's help), `add_arguments(parser)` and `run(args) -> dict | None`: a dict is printed as
JSON, None means the command printed its own output. Register one by importing it and adding it
to SUBCOMMANDS (the order there is the order `--help` lists them in). A user's mistake (a
BenchError) is printed as one line, as `bench` prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from types import ModuleType

from .. import parity
from ..config import SuiteError
from ..errors import BenchError
from . import bound, engines, faiss_scale, generation, prompt, rag, retrieval, train

SUBCOMMANDS: dict[str, ModuleType] = {
    "prompt": prompt,
    "generation": generation,
    "train": train,
    "rag": rag,
    "retrieval": retrieval,
    "faiss-scale": faiss_scale,
    "parity": parity,
    "engines": engines,
    "bound": bound,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.perf",
                                     description="Speed benchmarks behind docs/performance.md; each prints JSON "
                                                 "(retrieval: a Markdown table).")
    sub = parser.add_subparsers(dest="what", required=True)
    for name, module in SUBCOMMANDS.items():
        doc = (module.__doc__ or "").strip()
        module.add_arguments(sub.add_parser(name, help=doc.split("\n")[0], description=doc,
                                            formatter_class=argparse.RawDescriptionHelpFormatter))
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        result = SUBCOMMANDS[args.what].run(args)
    except BenchError as e:  # a user mistake: one line (each problem of a suite); anything else keeps its traceback
        if os.environ.get("TRIDENT_DEBUG"):
            raise
        lines = [str(p) for p in e.problems] if isinstance(e, SuiteError) else [str(e)]
        print("\n".join(f"error: {line}" for line in lines), file=sys.stderr)
        raise SystemExit(e.exit_code) from None
    if result is not None:
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
