"""The overhead check's hand-loop timer must train what the harness trains: every batch of every
epoch once, in order, the very first step untimed."""
from tools import overhead_check


def test_hand_loop_trains_each_batch_once_per_epoch(data_dir, monkeypatch):
    monkeypatch.setenv("BENCH_DATA_DIR", str(data_dir))
    seen, timed = [], []
    clock = iter(range(10**6))
    monkeypatch.setattr(overhead_check.time, "perf_counter", lambda: next(clock) * 0.01)

    def step(x, y):
        seen.append(int(y[0]) * 10**6 + int(x[0].sum()))

    mean, median = overhead_check._time_epochs(lambda x, y: (x, y), step, lambda: timed.append(len(seen)))
    epochs = list(overhead_check._epochs())
    expected = [int(y[0]) * 10**6 + int(x[0].sum()) for _, batches in epochs for x, y in batches]
    assert seen == expected
    assert timed[0] == 1  # the first step's barrier comes before any timed block
    assert mean > 0 and median > 0
