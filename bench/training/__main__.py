"""Train (or find cached) the models of a suite's fine-tuning variant, e.g. on several GPUs:

    accelerate launch -m bench.training legal lora          # or: torchrun --nproc_per_node 4 -m bench.training ...
    bench run legal                                         # then: predictions use the cached adapter

Each process trains with transformers' Trainer (DDP when launched on several devices); the main
process writes the artifact into the adapter cache, the others wait for it. `bench run` on one
device then finds it by the same key and does not retrain.
"""

from __future__ import annotations

import argparse
import sys


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.training")
    p.add_argument("suite")
    p.add_argument("arm", help="a finetune variant of the suite")
    p.add_argument("--tasks", nargs="*", default=None)
    p.add_argument("--model", default=None)
    p.add_argument("--retrain", action="store_true")
    p.add_argument("--allow-outside-paths", action="store_true", help="as for `bench run`")
    args = p.parse_args()
    try:
        run(args)
    except Exception as e:  # one line, never a traceback
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)


def run(args: argparse.Namespace) -> None:
    from ..arms import suite_context
    from ..arms.finetune import FinetuneArm
    from ..config import unknown_name
    from ..errors import ConfigError
    from ..models import choose_device, load_model
    from ..suites import load_suite
    from . import distributed

    suite = load_suite(args.suite, allow_outside=args.allow_outside_paths)
    spec = next((a for a in suite.spec.arms if a.name == args.arm), None)
    if spec is None or spec.arm != "finetune":
        finetunes = [a.name for a in suite.spec.arms if a.arm == "finetune"]
        raise ConfigError(unknown_name("finetune variant", args.arm, finetunes))
    device = distributed.local_device(choose_device())
    loaded = {}

    def get_model():
        if "lm" not in loaded:
            loaded["lm"] = load_model(args.model or suite.spec.model, device=device, seed=suite.spec.seed)
        return loaded["lm"]

    main_process = distributed.is_main()
    ctx = suite_context(suite, get_model, batch_size=16, retrain=args.retrain,
                     log=(print if main_process else (lambda m: None)))
    arm = FinetuneArm(spec)
    names = args.tasks or spec.tasks or list(suite.tasks)
    done = set()
    for name in names:
        task = suite.tasks[name]
        key = arm.artifact_key(ctx, get_model(), task)
        if key in done:
            continue
        arm.ensure_trained(ctx, task)  # every process trains; the main one writes the entry
        done.add(key)
        if main_process:
            print(f"{spec.name} · {name}: cached as adapters/{key}")
    distributed.end()


if __name__ == "__main__":
    main()
