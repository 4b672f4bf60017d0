"""Experiments: questions that take more than one run of the arms to answer, built on the
runner's cells and caches (never a parallel pipeline).

`bench experiment NAME SUITE` runs one; each writes its own run-like directory under
results/<suite>/ with a JSON of its figures, report.md, report.html and plots.

- knowledge-update (`knowledge_update.py`): run the arms as the corpus was before its `update`
  files, then after; how many changed questions each arm answers with the new fact and how many
  with the old one, and what catching up cost (re-indexing against retraining).
- sweep (`sweep.py`, `sweep_results.py`, `sweep_report.py`): a fine-tune variant's declared `sweep:`
  of its settings, every trial trained and scored on validation only, the best scored on test.
- learning-curve (`learning_curve.py`, `curve_figures.py`, `curve_report.py`): the variants that use
  train data at nested, seeded train sizes (the full split is `bench run`'s cells); the smallest
  size at which each beats each other one (paired tests, Holm over the sizes).
- seed-spread (`seed_spread.py`, `seed_figures.py`, `seed_stats.py`, `seed_report.py`): fine-tunes
  trained with several training seeds; per-seed scores, spread, and a test over seeds and examples.
- `cells.py` (groups of the runner's cells, recorded for rebuilding a report) and `paired.py` (a
  run's paired test on stored predictions) serve the last two.
- prompt-sensitivity (`prompt_sensitivity.py`, `sensitivity_figures.py`, `sensitivity_report.py`): every
  arm variant under the suite's instruction and each task's `paraphrases`; the spread beside each score,
  and verdicts that say when it exceeds the gap between arms.
- forgetting (`forgetting.py`, `forgetting_figures.py`, `forgetting_report.py`): the general control set
  (bench/control) under the base model and every model the suite's fine-tunes train; the drop, its CI
  and a paired test. `borrowed_finetune.py` (a fine-tune as the run trains it, asked elsewhere) serves both.
"""

from __future__ import annotations

EXPERIMENTS: dict[str, str] = {
    "knowledge-update": "run the arms before and after the corpus's update: who answers with the new facts, "
                        "who with the old, and what catching up costs",
    "sweep": "search a fine-tune variant's declared `sweep:` of settings: every trial trained and chosen on "
             "validation only, and only the chosen one scored on test",
    "learning-curve": "every arm variant that uses train data at nested, seeded train sizes: score against train "
                      "size, and from which size each arm beats each other one",
    "seed-spread": "fine-tune variants trained with several training seeds: per-seed scores, their spread, and "
                   "verdicts that count training variance",
    "prompt-sensitivity": "every arm variant under the suite's instruction and each paraphrase of it: the spread "
                          "beside each score, and whether it exceeds the gap between arms",
    "forgetting": "the general control set under the base model and every fine-tuned model of the suite: the drop, "
                  "its CI and a paired test",
}
"""Experiment name -> one line of help (the CLI's sub-commands)."""
