"""Assign the `split` field of the legal suite's data, deterministically (rerunnable, idempotent).

- clause_type: stratified by label, 60/15/25 train/validation/test.
- tenancy_qa: by statute section (an amended question follows its original section), so test
  questions ask about sections no train question covers: fine-tuning on train questions
  cannot memorise test answers.
- plain_summary: 60/15/25.
- lease_qa: by agreement (its `agreement`, a lease of corpus/leases.jsonl), so no test question
  asks about an agreement any train question covers.
Order within a group comes from a SHA-256 of the id, so adding an item moves no other item.

    python suites/legal/assign_splits.py
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).parent
SHARES = (("train", 0.60), ("validation", 0.15), ("test", 0.25))


def _order(key: str) -> str:
    return hashlib.sha256(f"trident-legal:{key}".encode()).hexdigest()


def _cut(keys: list[str]) -> dict[str, str]:
    """Map each key to a split by its hash order, in the SHARES proportions."""
    keys = sorted(keys, key=_order)
    out, start = {}, 0
    for i, (split, share) in enumerate(SHARES):
        end = len(keys) if i == len(SHARES) - 1 else start + round(share * len(keys))
        out.update({k: split for k in keys[start:end]})
        start = end
    return out


def _rewrite(path: Path, split_of) -> dict[str, int]:
    rows = [json.loads(l) for l in path.read_text(encoding="utf-8").splitlines() if l.strip()]
    counts: dict[str, int] = defaultdict(int)
    for r in rows:
        r.pop("split", None)
        r["split"] = split_of(r)
        counts[r["split"]] += 1
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return dict(counts)


def main() -> None:
    data = HERE / "data"
    clauses = [json.loads(l) for l in (data / "clause_type.jsonl").read_text(encoding="utf-8").splitlines()
               if l.strip()]
    by_label: dict[str, list[str]] = defaultdict(list)
    for r in clauses:
        by_label[r["label"]].append(r["id"])
    clause_split = {k: v for ids in by_label.values() for k, v in _cut(ids).items()}
    print("clause_type", _rewrite(data / "clause_type.jsonl", lambda r: clause_split[r["id"]]))

    qa = [json.loads(l) for l in (data / "tenancy_qa.jsonl").read_text(encoding="utf-8").splitlines() if l.strip()]
    section = lambda r: r.get("original_section") or r["section"]  # noqa: E731
    section_split = _cut(sorted({section(r) for r in qa}))
    print("tenancy_qa", _rewrite(data / "tenancy_qa.jsonl", lambda r: section_split[section(r)]))

    ps = [json.loads(l) for l in (data / "plain_summary.jsonl").read_text(encoding="utf-8").splitlines() if l.strip()]
    ps_split = _cut([r["id"] for r in ps])
    print("plain_summary", _rewrite(data / "plain_summary.jsonl", lambda r: ps_split[r["id"]]))

    leases = [json.loads(l) for l in (data / "lease_qa.jsonl").read_text(encoding="utf-8").splitlines()
              if l.strip()]
    lease_split = _cut(sorted({r["agreement"] for r in leases}))
    print("lease_qa", _rewrite(data / "lease_qa.jsonl", lambda r: lease_split[r["agreement"]]))


if __name__ == "__main__":
    main()
