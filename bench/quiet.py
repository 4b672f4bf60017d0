"""A quiet run: the libraries' warnings, progress bars and loading messages off unless `--verbose`.

What a run has to say, it says itself (bench.progress: stages, times, notes). The libraries it
uses add their own: transformers' "Loading weights" and GGUF "Converting and de-quantizing" bars,
hub download bars, warnings about their own internals (peft 0.21 reads the attribute transformers
5.24 renamed, `is_gradient_checkpointing`, on every LoRA model it wraps). None of that is the
user's to act on. Warnings raised from our own modules stay visible: a deprecated call of ours is
to be fixed where it is made (tests/test_end_to_end.py fails on any warning in a run's output).
"""

from __future__ import annotations

import logging
import os
import sys
import warnings

LIBRARIES = ("transformers", "huggingface_hub", "datasets", "peft", "accelerate", "sentence_transformers", "torch",
             "safetensors", "tokenizers", "faiss", "bm25s", "tqdm")
"""Python packages whose warnings and log messages a default run hides."""

QUIET_ENVIRONMENT = {
    # tqdm reads TQDM_* defaults when it is first imported: this reaches the bars libraries draw with
    # tqdm directly (transformers' GGUF conversion), which their own switches below do not
    "TQDM_DISABLE": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
}


def quiet_libraries() -> None:
    """Hide the libraries' warnings, bars and messages for the rest of this process (and its child
    processes, through the environment). The environment switches reach a library imported later;
    one already imported is switched off through its own functions."""
    for name, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(name, value)  # a user's own setting wins
    library = "|".join(LIBRARIES)
    warnings.filterwarnings("ignore", module=rf"({library})(\.|$)")
    for name in LIBRARIES:
        logging.getLogger(name).setLevel(logging.ERROR)
    if "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    if "transformers" in sys.modules:
        from transformers.utils import logging as transformers_logging

        transformers_logging.set_verbosity_error()
        transformers_logging.disable_progress_bar()
