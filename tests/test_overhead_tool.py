"""The overhead check's hand loop must train what the harness trains: every batch of every epoch
once, in order, the very first step alone and untimed, each block between two barriers."""
from tools import overhead_check


def test_hand_loop_trains_each_batch_once_per_epoch(data_dir, monkeypatch):
    monkeypatch.setenv("BENCH_DATA_DIR", str(data_dir))
    seen, barriers = [], []

    def fingerprint(x, y):
        return int(y[0]) * 10**6 + int(x[0].sum())

    loop = overhead_check.HandLoop(lambda x, y: (x, y), lambda x, y: seen.append(fingerprint(x, y)),
                                   lambda: barriers.append(len(seen)))
    epochs = list(overhead_check._epochs())
    total = sum(len(batches) for batches in epochs)
    sizes = [1, 5, 40, 37]  # block sizes as the harness's trial might ask for them
    while len(seen) < total:
        loop.run(sizes[min(len(barriers) // 2, len(sizes) - 1)])
    assert seen == [fingerprint(x, y) for batches in epochs for x, y in batches]
    assert barriers[:2] == [0, 1] and loop.first_seconds is not None  # the first step, on its own
    assert sum(steps for steps, _ in loop.blocks) == total - 1
    assert all(seconds >= 0 for _, seconds in loop.blocks)
    per_epoch = len(epochs[0])
    done = 1
    for steps, _ in loop.blocks:  # no block spans two epochs (each epoch is converted untimed first)
        assert done // per_epoch == (done + steps - 1) // per_epoch
        done += steps
