"""A quiet default run: the libraries' warnings, bars and loading messages hidden unless --verbose,
warnings raised from our own code still shown. Each case runs in a child process: the switches
hold for the rest of a process and must not leak into other tests."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.quiet import QUIET_ENVIRONMENT

ROOT = Path(__file__).parent.parent

CHILD = """
import sys, warnings
from bench.__main__ import parser, quiet_unless_verbose, run_options

quiet_unless_verbose(run_options(parser().parse_args(["run", "some-suite", *sys.argv[2:]])))
from bench.models import load_model

load_model(sys.argv[1], device="cpu", dtype="float32")  # transformers draws a 'Loading weights' bar
warnings.warn_explicit("a library's internal deprecation", FutureWarning, "peft_model.py", 184,
                       module="peft.peft_model")
warnings.warn("a deprecated call of ours", FutureWarning)
"""


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory, tiny_lm):
    folder = tmp_path_factory.mktemp("tiny-llama")
    tiny_lm.model.save_pretrained(folder)
    tiny_lm.tokenizer.save_pretrained(folder)
    return folder


def child_stderr(model: Path, *options: str) -> str:
    # an earlier test's in-process `bench run` has set the quiet switches in this process's environment,
    # which a child inherits: start the child from the environment a user's shell would give it
    env = {k: v for k, v in os.environ.items() if k not in QUIET_ENVIRONMENT}
    done = subprocess.run([sys.executable, "-c", CHILD, str(model), *options], capture_output=True, text=True,
                          cwd=ROOT, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stderr


def test_a_default_run_hides_library_bars_and_warnings_but_not_ours(saved_model):
    stderr = child_stderr(saved_model)
    assert "Loading weights" not in stderr and "internal deprecation" not in stderr
    assert "FutureWarning: a deprecated call of ours" in stderr


def test_verbose_shows_them(saved_model):
    stderr = child_stderr(saved_model, "--verbose")
    assert "Loading weights" in stderr and "FutureWarning: a library's internal deprecation" in stderr
    assert "a deprecated call of ours" in stderr
