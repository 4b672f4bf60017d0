"""Experiments: questions that take more than one run of the arms to answer, built on the
runner's cells and caches (never a parallel pipeline).

`bench experiment NAME SUITE` runs one; each writes its own run-like directory under
results/<suite>/ with a JSON of its figures, report.md, report.html and plots.

- knowledge-update (`knowledge_update.py`): run the arms as the corpus was before its `update`
  files, then after; how many changed questions each arm answers with the new fact and how many
  with the old one, and what catching up cost (re-indexing against retraining).
"""

from __future__ import annotations

EXPERIMENTS: dict[str, str] = {
    "knowledge-update": "run the arms before and after the corpus's update: who answers with the new facts, "
                        "who with the old, and what catching up costs",
}
"""Experiment name -> one line of help (the CLI's sub-commands)."""
