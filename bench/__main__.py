"""Command line: `bench ls|validate|describe|run|report|compare|export|experiment` (also `python -m bench`).
One function per command."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from .config import SuiteError
from .errors import BenchError

console = Console()
if not console.is_terminal:  # logs and CI: wide enough that score tables never truncate
    console = Console(width=160)
err = Console(stderr=True)


def cmd_ls(args: argparse.Namespace) -> int:
    if args.runs:
        return ls_runs(Path(args.results or os.environ.get("TRIDENT_RESULTS", "results")))
    from rich.table import Table

    from .config import parse_suite_yaml
    from .suites import list_suites

    table = Table(title="suites")
    for col in ("name", "tasks", "arm variants", "path"):
        table.add_column(col)
    for name, path in list_suites().items():
        try:
            spec = parse_suite_yaml(path)
            table.add_row(name, ", ".join(t.name for t in spec.tasks), ", ".join(a.name for a in spec.arms), str(path))
        except SuiteError as e:
            table.add_row(name, f"[red]invalid ({len(e.problems)} problems)[/red]", "", str(path))
    console.print(table)
    return 0


def ls_runs(results: Path) -> int:
    """Every run directory under `results` with its status; an unfinished one in red, with what to do."""
    from rich.table import Table

    from .results import list_runs

    runs = list_runs(results)
    table = Table(title=f"runs in {escape(str(results))}")
    for col in ("suite", "run", "kind", "status", "started", "what to do"):
        table.add_column(col)
    for r in runs:
        status = escape(r.status) if r.complete else f"[red]{escape(r.status)}[/red]"
        table.add_row(*map(escape, (r.suite, r.path.name, r.kind)), status, r.started or "", escape(r.note))
    console.print(table)
    console.print(f"{len(runs)} run directories, {sum(not r.complete for r in runs)} unfinished")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from .leakage import find_leakage
    from .suites import load_suite

    suite = load_suite(args.suite, apply_limits=False, allow_outside=args.allow_outside_paths)
    for t in suite.tasks.values():
        sizes = ", ".join(f"{s} {n}" for s, n in t.full_sizes.items() if n)
        console.print(f"  {t.name} ({t.spec.kind}): {sizes}")
    if suite.corpus:
        console.print(f"  corpus: {len(suite.corpus)} documents")
    console.print(f"[green]{suite.path} is valid[/green]: "
                  f"{len(suite.tasks)} tasks, {len(suite.spec.arms)} arm variants")
    find_leakage(suite).print_warnings(console, summary=True)  # warnings: a leak does not make a suite invalid
    return 0


def cmd_describe(args: argparse.Namespace) -> int:
    from .describe import describe
    from .suites import load_suite

    print(describe(load_suite(args.suite, apply_limits=False, allow_outside=args.allow_outside_paths)))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from .runner import run_suite
    from .tracking import check_tracker

    check_tracker(args.track)  # a missing tracker package is said before the run, not after it
    run_dir = run_suite(args.suite, quiet_unless_verbose(run_options(args)), console)
    if run_dir is None:  # another process of a torchrun / accelerate launch: the main one reports
        return 0
    return _show(run_dir, track=args.track)


def add_run_options(p: argparse.ArgumentParser) -> None:
    """One option per field of RunOptions, with the field's help: the options are declared once."""
    from .runner import RunOptions

    for f in dataclasses.fields(RunOptions):
        meta, flag = f.metadata, f.metadata.get("flag") or "--" + f.name.replace("_", "-")
        if f.type in ("bool", bool):
            action = "store_false" if f.default is True else "store_true"
            p.add_argument(flag, dest=f.name, action=action, help=meta["help"])
        else:
            convert = int if "int" in str(f.type) else str
            p.add_argument(flag, dest=f.name, type=convert, default=None, help=meta["help"])


def add_outside_paths_option(p: argparse.ArgumentParser) -> None:
    """`validate` and `describe` read data as `run` does, so they take run's opt-in, with its help."""
    from .runner import RunOptions

    f = next(f for f in dataclasses.fields(RunOptions) if f.name == "allow_outside_paths")
    p.add_argument("--allow-outside-paths", action="store_true", help=f.metadata["help"])


def run_options(args: argparse.Namespace):
    """RunOptions from parsed arguments: options not given keep the field's default."""
    from .runner import RunOptions

    given = {}
    for f in dataclasses.fields(RunOptions):
        value = getattr(args, f.name)
        if value is None:
            continue
        if f.metadata.get("csv"):
            value = [v.strip() for v in value.split(",") if v.strip()] or None
        elif f.name == "results":
            value = Path(value)
        given[f.name] = value
    return RunOptions(**given)


def quiet_unless_verbose(opts):
    """The libraries' warnings, bars and loading messages off unless --verbose (before they are imported)."""
    if not opts.verbose:
        from .quiet import quiet_libraries

        quiet_libraries()
    return opts


def cmd_report(args: argparse.Namespace) -> int:
    from .tracking import check_tracker

    check_tracker(args.track)
    if Path(args.run_dir).name.startswith("sweep-"):  # a sweep's directory: its report, from sweep.json alone
        from .experiments.sweep_report import rebuild_sweep_report

        result, _ = rebuild_sweep_report(Path(args.run_dir))
        return _show_sweep(Path(args.run_dir), result)
    rebuilt = _rebuild_experiment(Path(args.run_dir))
    if rebuilt is not None:
        return rebuilt
    # load_run says in one line when this is not a run, or a run stopped or failed while predicting
    return _show(Path(args.run_dir), args.query_volume, args.track)


def _show(run_dir: Path, query_volume: int | None = None, track: str | None = None) -> int:
    """Write every report file and mark the run complete, print the tables and verdicts, and where the
    files are. `query_volume` overrides the run's (`bench report --query-volume`); `track` names the
    experiment tracker the finished run is logged to (`--track`)."""
    from .report import finish_report, terminal_cost_table, terminal_tables
    from .store import read_json

    run, paths = finish_report(run_dir, query_volume)  # read once, rendered in every format
    decision = read_json(paths["decision"])  # the analysis write_report just made, not a second one
    for table in terminal_tables(run, decision):
        console.print(table)
    if decision:
        console.print(terminal_cost_table(run, decision))
    console.rule("verdicts")
    for d in decision.values():
        console.print(f"• {escape(d['verdict'])}", highlight=False)
    console.print(f"report: {paths['md']}")
    console.print(f"report: {paths['html']}")
    console.print(f"results: {paths['csv']}")
    if track:
        from .tracking import track_run

        tracked = track_run(track, run_dir)
        console.print(f"tracked: {escape(tracked.uri)} (experiment {escape(tracked.experiment)}, "
                      f"run {tracked.run_id})", highlight=False)
    return 0


def add_track_option(p: argparse.ArgumentParser) -> None:
    from .tracking import TRACK_HELP

    p.add_argument("--track", default=None, metavar="TRACKER", help=TRACK_HELP)


def cmd_export(args: argparse.Namespace) -> int:
    from .export import ExportRequest, export_model

    if not args.verbose:
        from .quiet import quiet_libraries

        quiet_libraries()
    done = export_model(ExportRequest(Path(args.run_dir), args.variant, Path(args.out), merged=args.merged,
                                      task=args.task, licence=args.license))
    if done.note:
        console.print(escape(done.note), highlight=False)
    console.print(f"exported {escape(done.variant)} ({done.export_format}) to {escape(str(done.out))}; "
                  f"its card: {escape(str(done.out / 'README.md'))}", highlight=False)
    return 0


def add_export_parser(sub: argparse._SubParsersAction) -> None:
    from .model_card import FORMATS
    from .runner import RunOptions

    e = sub.add_parser("export", help="write a run's fine-tuned model as a PEFT adapter (or, --merged, a whole "
                                      "model) with a filled model card")
    e.add_argument("run_dir", help="a complete run directory, results/<suite>/<run-id>")
    e.add_argument("variant", help="a finetune variant of the run, or a rag variant with `finetuned:` (exports "
                                   "that fine-tune)")
    e.add_argument("--out", required=True, help="the folder to create (must not exist, or be empty)")
    e.add_argument("--merged", action="store_true", help=f"LoRA/QLoRA: {FORMATS['merged']}")
    e.add_argument("--task", help="which task's model, when the variant trained one per task")
    e.add_argument("--license", help="the card's licence id (default: the base model's where its package declares "
                                     "one, else 'other')")
    verbose = next(f for f in dataclasses.fields(RunOptions) if f.name == "verbose")
    e.add_argument("--verbose", action="store_true", help=verbose.metadata["help"])
    e.set_defaults(fn=cmd_export)


def cmd_knowledge_update(args: argparse.Namespace) -> int:
    from .experiments.knowledge_update import describe_plan, plan_update, run_knowledge_update

    opts = quiet_unless_verbose(run_options(args))
    if args.dry_run:
        plan = plan_update(args.suite, opts, stale_only=args.stale_only)
        for line in describe_plan(plan):
            console.print(escape(line), highlight=False)
        return 0
    out, result = run_knowledge_update(args.suite, opts, console, stale_only=args.stale_only)
    from .experiments.update_report import terminal_tables

    for table in terminal_tables(result):
        console.print(table)
    console.print(f"report: {out / 'report.md'}")
    console.print(f"report: {out / 'report.html'}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from .experiments.sweep import describe_plan, plan_sweep, run_sweep

    opts = quiet_unless_verbose(run_options(args))
    if args.dry_run:
        for line in describe_plan(plan_sweep(args.suite, opts)):
            console.print(escape(line), highlight=False)
        return 0
    out, result = run_sweep(args.suite, opts, console)
    return _show_sweep(out, result)


def _show_sweep(out: Path, result) -> int:
    from .experiments.sweep_report import terminal_tables

    for table in terminal_tables(result):
        console.print(table)
    console.print(f"report: {out / 'report.md'}")
    console.print(f"report: {out / 'report.html'}")
    return 0


def add_sweep_parser(which: argparse._SubParsersAction, help: str) -> None:
    s = which.add_parser("sweep", help=help)
    s.add_argument("suite")
    add_run_options(s)
    s.add_argument("--dry-run", action="store_true",
                   help="check the suite's sweep declarations and print every trial; loads no model")
    s.set_defaults(fn=cmd_sweep)


def cmd_learning_curve(args: argparse.Namespace) -> int:
    from .experiments.curve_report import terminal_tables
    from .experiments.learning_curve import describe_plan, parse_sizes, plan_curve, run_learning_curve

    opts, sizes = quiet_unless_verbose(run_options(args)), parse_sizes(args.sizes)
    if args.dry_run:
        return _print_lines(describe_plan(plan_curve(args.suite, opts, sizes)))
    out, result = run_learning_curve(args.suite, opts, console, sizes)
    return _show_experiment(out, terminal_tables(result))


def cmd_seed_spread(args: argparse.Namespace) -> int:
    from .experiments.seed_report import terminal_tables
    from .experiments.seed_spread import describe_plan, parse_seeds, plan_spread, run_seed_spread

    opts = quiet_unless_verbose(run_options(args))
    seeds = parse_seeds(args.seeds) if args.seeds else None
    variants = [v.strip() for v in args.variants.split(",") if v.strip()] if args.variants else None
    if args.dry_run:
        return _print_lines(describe_plan(plan_spread(args.suite, opts, seeds, variants)))
    out, result = run_seed_spread(args.suite, opts, console, seeds=seeds, variants=variants)
    return _show_experiment(out, terminal_tables(result))


def _rebuild_experiment(folder: Path) -> int | None:
    """`bench report` on a learning-curve, seed-spread, prompt-sensitivity or forgetting directory: its
    report again from what it stored (no model); None for any other directory."""
    if folder.name.startswith("learning-curve-"):
        from .experiments import curve_report as report
        from .experiments import learning_curve as experiment
    elif folder.name.startswith("seed-spread-"):
        from .experiments import seed_report as report
        from .experiments import seed_spread as experiment
    elif folder.name.startswith("prompt-sensitivity-"):  # from its JSON of figures
        from .experiments import prompt_sensitivity as experiment
        from .experiments import sensitivity_report as report
    elif folder.name.startswith("forgetting-"):  # from its JSON of figures
        from .experiments import forgetting as experiment
        from .experiments import forgetting_report as report
    else:
        return None
    return _show_experiment(folder, report.terminal_tables(experiment.rebuild_report(folder)))


def _print_lines(lines: list[str]) -> int:
    for line in lines:
        console.print(escape(line), highlight=False)
    return 0


def _show_experiment(out: Path, tables: list) -> int:
    for table in tables:
        console.print(table)
    console.print(f"report: {out / 'report.md'}")
    console.print(f"report: {out / 'report.html'}")
    return 0


def add_curve_and_seed_parsers(which: argparse._SubParsersAction, helps: dict[str, str]) -> None:
    """`bench experiment learning-curve` and `bench experiment seed-spread`, with `run`'s options."""
    from .experiments.learning_curve import DEFAULT_SIZES
    from .experiments.seed_spread import SEED_COUNT

    lc = which.add_parser("learning-curve", help=helps["learning-curve"])
    lc.add_argument("suite")
    add_run_options(lc)
    lc.add_argument("--sizes", default=DEFAULT_SIZES,
                    help="comma-separated train sizes below each task's train split; 'all' (the full split, the cells "
                         f"of `bench run`) always runs (default {DEFAULT_SIZES}, about 15 minutes for legal on 2 CPU "
                         "cores; the full curve: 16,32,64,128,all)")
    ss = which.add_parser("seed-spread", help=helps["seed-spread"])
    ss.add_argument("suite")
    add_run_options(ss)
    ss.add_argument("--seeds", help=f"comma-separated training seeds, at least two (default: the suite seed and the "
                                    f"next {SEED_COUNT - 1})")
    ss.add_argument("--variants", help="comma-separated fine-tune variants to train with each seed (the retrieval "
                                       "variants built on them follow), or 'all' (default: the first fine-tune "
                                       "variant run, about 15 minutes for legal on 2 CPU cores)")
    for p, fn in ((lc, cmd_learning_curve), (ss, cmd_seed_spread)):
        p.add_argument("--dry-run", action="store_true", help="print what would run; loads no model")
        p.set_defaults(fn=fn)


def cmd_prompt_sensitivity(args: argparse.Namespace) -> int:
    from .experiments.prompt_sensitivity import describe_plan, plan_sensitivity, run_prompt_sensitivity, sized
    from .experiments.sensitivity_report import terminal_tables

    opts = sized(quiet_unless_verbose(run_options(args)), args.full)
    if args.dry_run:
        return _print_lines(describe_plan(plan_sensitivity(args.suite, opts)))
    out, result = run_prompt_sensitivity(args.suite, opts, console)
    return _show_experiment(out, terminal_tables(result))


def cmd_forgetting(args: argparse.Namespace) -> int:
    from .experiments.forgetting import describe_plan, plan_forgetting, run_forgetting
    from .experiments.forgetting_report import terminal_tables

    opts = quiet_unless_verbose(run_options(args))
    if args.dry_run:
        return _print_lines(describe_plan(plan_forgetting(args.suite, opts, control_limit=args.control_limit)))
    out, result = run_forgetting(args.suite, opts, console, control_limit=args.control_limit)
    return _show_experiment(out, terminal_tables(result))


def add_sensitivity_and_forgetting_parsers(which: argparse._SubParsersAction, helps: dict[str, str]) -> None:
    """`bench experiment prompt-sensitivity` and `bench experiment forgetting`, with `run`'s options."""
    from .experiments.prompt_sensitivity import DEFAULT_TEST_LIMIT

    ps = which.add_parser("prompt-sensitivity", help=helps["prompt-sensitivity"])
    ps.add_argument("suite")
    add_run_options(ps)
    ps.add_argument("--full", action="store_true",
                    help=f"every test example a run uses (its cells under the suite's instruction are then the run's "
                         f"own); default: a seeded {DEFAULT_TEST_LIMIT} per task, about 15 minutes for legal on 2 CPU "
                         "cores, or --limit N")
    fg = which.add_parser("forgetting", help=helps["forgetting"])
    fg.add_argument("suite")
    add_run_options(fg)
    fg.add_argument("--control-limit", type=int, default=None,
                    help="a seeded subsample of N items per control task (default: all 402, about 6 minutes for "
                         "legal on 2 CPU cores with the run's fine-tunes cached, 17 if they must be trained; "
                         "`--profile full` scores every fine-tune of that profile)")
    for p, fn in ((ps, cmd_prompt_sensitivity), (fg, cmd_forgetting)):
        p.add_argument("--dry-run", action="store_true", help="print what would run; loads no model")
        p.set_defaults(fn=fn)


def cmd_compare(args: argparse.Namespace) -> int:
    from .compare import compare_runs
    from .store import atomic_write_text

    table, md = compare_runs([Path(p) for p in args.run_dirs])
    console.print(table)
    if args.out:
        atomic_write_text(Path(args.out), md)
        console.print(f"written: {args.out}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench", description="Prompt, fine-tune or retrieve? Measure it.")
    sub = p.add_subparsers(dest="command", required=True)
    ls = sub.add_parser("ls", help="list suites (or, with --runs, run directories and whether each finished)")
    ls.add_argument("--runs", action="store_true", help="list the run directories of a results folder instead")
    ls.add_argument("--results", help="the results folder --runs lists (default: env TRIDENT_RESULTS, else results)")
    ls.set_defaults(fn=cmd_ls)
    v = sub.add_parser("validate", help="check a suite without running it")
    v.add_argument("suite", help="suite name, directory or suite.yaml")
    add_outside_paths_option(v)
    v.set_defaults(fn=cmd_validate)
    d = sub.add_parser("describe", help="counts per split and label, length statistics (Markdown)")
    d.add_argument("suite")
    add_outside_paths_option(d)
    d.set_defaults(fn=cmd_describe)
    r = sub.add_parser("run", help="run a suite's arm variants and report")
    r.add_argument("suite")
    add_run_options(r)
    add_track_option(r)
    r.set_defaults(fn=cmd_run)
    rep = sub.add_parser("report", help="rebuild the report of a run directory (no model needed)")
    rep.add_argument("run_dir")
    rep.add_argument("--query-volume", type=int, default=None,
                     help="queries the verdicts price each arm at, training included (default: the run's, as "
                          "`bench run` recorded it); decision.json records the one used")
    add_track_option(rep)
    rep.set_defaults(fn=cmd_report)
    cmp_ = sub.add_parser("compare", help="set several runs side by side (models, ranks, suites)")
    cmp_.add_argument("run_dirs", nargs="+")
    cmp_.add_argument("--out", help="also write the comparison as Markdown here")
    cmp_.set_defaults(fn=cmd_compare)
    add_export_parser(sub)
    add_experiments(sub)
    return p


def add_experiments(sub: argparse._SubParsersAction) -> None:
    """`bench experiment NAME SUITE`: one sub-command per experiment, with `run`'s options."""
    from .experiments import EXPERIMENTS

    exp = sub.add_parser("experiment", help="experiments that run the arms more than once (knowledge-update)")
    which = exp.add_subparsers(dest="experiment", required=True)
    ku = which.add_parser("knowledge-update", help=EXPERIMENTS["knowledge-update"])
    ku.add_argument("suite")
    add_run_options(ku)
    ku.add_argument("--stale-only", action="store_true",
                    help="do not retrain fine-tunes after the update (faster; their first training time is shown)")
    ku.add_argument("--dry-run", action="store_true",
                    help="check the suite's update declarations and print what would run; loads no model")
    ku.set_defaults(fn=cmd_knowledge_update)
    add_sweep_parser(which, EXPERIMENTS["sweep"])
    add_curve_and_seed_parsers(which, EXPERIMENTS)
    add_sensitivity_and_forgetting_parsers(which, EXPERIMENTS)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.fn(args)
    except SuiteError as e:
        for problem in e.problems:
            err.print(f"[red]error[/red] {escape(str(problem))}", highlight=False, soft_wrap=True)
        err.print(f"{len(e.problems)} problem(s) found")
        return 2
    except BenchError as e:  # a user mistake: one line; anything else is a bug and keeps its traceback
        if os.environ.get("TRIDENT_DEBUG"):
            raise
        err.print(f"error: {escape(str(e))}", highlight=False, soft_wrap=True)
        return e.exit_code


if __name__ == "__main__":
    sys.exit(main())
