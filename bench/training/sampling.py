"""The random-order sampler: transformers' BatchRebalanceSampler, re-seeded per run, with an
epoch's short last step trained on its own examples only.

BatchRebalanceSampler draws each optimiser step's examples at random and splits them into the
step's micro-batches by length (bench.training.trainer `Batching`). When an epoch's last step
holds fewer examples than it has micro-batches (9 examples, steps of 8 in 4 micro-batches: a
last step of 1), transformers pads that step with the epoch's first examples, as PyTorch's
DistributedSampler pads, so that every rank gets the same number of micro-batches; on one
process that only trains those examples twice an epoch. Here, on one process, the last step's
examples become micro-batches of one and the step is shorter (the Trainer takes a short last
step when an epoch's micro-batches do not fill it). Several processes keep transformers'
padding: their collectives need it.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from transformers.trainer_pt_utils import BatchRebalanceSampler


class RandomStepSampler(BatchRebalanceSampler):
    """BatchRebalanceSampler whose short last step (one process) repeats no example."""

    @classmethod
    def like(cls, sampler: BatchRebalanceSampler, seed: int) -> RandomStepSampler:
        """The same sampler as transformers built, drawing its order from `seed` (transformers
        leaves it at a fixed 42, so every run would draw the same order)."""
        return cls(lengths=sampler.lengths, effective_batch_size=sampler.effective_batch_size,
                   dp_size=sampler.dp_size, grad_accum=sampler.grad_accum, shuffle=sampler.shuffle, seed=seed,
                   rank=sampler.rank, drop_last=sampler.drop_last)

    @property
    def short_tail(self) -> bool:
        """Whether the last step has fewer examples than micro-batches, on one process."""
        return self.dp_size == 1 and self.has_tail and self.remainder < self.grad_accum

    def __iter__(self) -> Iterator[list[int]]:
        if not self.short_tail:
            yield from super().__iter__()
            return
        order = self._epoch_order()
        full = self.num_full_batches * self.effective_batch_size
        for start in range(0, full, self.effective_batch_size):
            yield from self._yield_global_batch(order[start:start + self.effective_batch_size])
        for index in order[full:]:
            yield [index]

    def __len__(self) -> int:
        if not self.short_tail:
            return super().__len__()
        return self.num_full_batches * self.grad_accum + self.remainder

    def _epoch_order(self) -> list[int]:
        # drawn exactly as the parent draws it, so full steps are the same either way
        if not self.shuffle:
            return list(range(len(self.lengths)))
        generator = torch.Generator()
        generator.manual_seed(self.seed + self.epoch)
        return torch.randperm(len(self.lengths), generator=generator).tolist()
