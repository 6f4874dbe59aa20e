"""engine/parallel.py's slicing of a global batch (no process group needed): every row once, shares summing to one."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from trainyard.engine.parallel import DataParallel  # noqa: E402


@pytest.mark.parametrize("rows, world", [(16, 2), (7, 2), (10, 3), (2, 2)])
def test_slices_cover_the_batch_once_and_shares_sum_to_one(rows, world):
    batch = {"x": torch.arange(rows), "y": torch.arange(rows) * 2}
    slices = [DataParallel(r, world).shard(batch) for r in range(world)]
    assert torch.equal(torch.cat([s["x"] for s in slices]), batch["x"])
    assert sum(DataParallel(r, world).weight(batch) for r in range(world)) == pytest.approx(1.0)


def test_a_batch_smaller_than_the_ranks_is_taken_whole_by_each_at_an_equal_share():
    batch = (torch.arange(1), torch.arange(1))
    for r in range(3):
        part = DataParallel(r, 3)
        assert len(part.shard(batch)[0]) == 1 and part.weight(batch) == pytest.approx(1 / 3)


def test_rows_weighted_by_a_count_make_the_ranks_losses_sum_to_the_global_token_mean():
    """A loss averaged over tokens (not rows): each rank's mean over its tokens, weighted by its share of the tokens,
    sums to the mean over all the batch's tokens, however unevenly the tokens fall between the ranks."""
    tokens = torch.tensor([1, 5, 2, 9, 3])  # labelled tokens per row
    values = [torch.rand(int(n), generator=torch.Generator().manual_seed(i)) for i, n in enumerate(tokens)]
    batch = {"tokens": tokens}
    total = 0.0
    for r in range(2):
        part = DataParallel(r, 2).weighted_by(lambda b: b["tokens"])
        lo, hi = part.bounds(len(tokens))
        total += part.weight(batch) * float(torch.cat(values[lo:hi]).mean())
    assert total == pytest.approx(float(torch.cat(values).mean()))
    assert DataParallel(0, 2).weight(batch) != pytest.approx(DataParallel(0, 2).weighted_by(lambda b: b["tokens"]).weight(batch))


def test_a_list_of_python_rows_in_a_batch_is_sliced_as_rows():
    """A preference batch: a tensor (the rows' reference log-probabilities) and the pairs as Python objects."""
    batch = {"ref": torch.arange(5), "pairs": [((i, i), (i, -i)) for i in range(5)]}
    parts = [DataParallel(r, 2).shard(batch) for r in range(2)]
    assert [p["pairs"] for p in parts] == [batch["pairs"][:2], batch["pairs"][2:]]
    assert [p["ref"].tolist() for p in parts] == [[0, 1], [2, 3, 4]]
