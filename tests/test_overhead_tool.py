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


def test_block_check_compares_blocks_after_an_evaluation_with_the_rest():
    from harness.record import SCHEMA_VERSION, Block, Evaluation, TrialRecord
    from tools.block_check import after_evaluation_ratio

    blocks = [Block(0, 1, 10, 0.1), Block(0, 11, 10, 0.1), Block(0, 21, 10, 0.2), Block(0, 31, 10, 0.1)]
    record = TrialRecord(schema_version=SCHEMA_VERSION, trial_id="t", run_id="r", framework="f", variant="default",
                         label="f", workload="w", dataset="d", profile="quick", device="cpu", threads=1, seed=0,
                         repeat=0, status="ok", blocks=blocks, evaluations=[Evaluation(21, 0.5, 1.0, 0.9)])
    assert after_evaluation_ratio(record) == (0.5, 1, 3)  # the block at step 21 ran at half the others' rate
    record.evaluations = []
    assert after_evaluation_ratio(record) is None
