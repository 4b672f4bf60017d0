"""The control set of `bench experiment forgetting`: general items a fine-tune on a suite's tasks
might stop answering, written by the trident project and loaded as a suite (suite.yaml here), so
the same loader and checks read it. make_control.py writes its data files."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..suites import Suite

CONTROL_SUITE = Path(__file__).parent / "suite.yaml"
BASE_VARIANT = "base"
"""The control suite's one arm variant: the base model under the shared template."""


def load_control(limit: int | None = None) -> Suite:
    """The control tasks; `limit` caps each one to a seeded subsample of its items."""
    from ..suites import load_suite

    return load_suite(str(CONTROL_SUITE), limit=limit)
