"""MNIST CNN: the classic Keras convnet without dropout."""
from workloads.spec import Layer, Optimizer, WorkloadSpec, act, conv2d, dense, maxpool

SPEC = WorkloadSpec(
    name="mnist_cnn",
    description="conv 3x3x32 ReLU -> conv 3x3x64 ReLU -> max-pool 2 -> flatten -> 128 ReLU -> 10, Adam 1e-3, batch 128",
    dataset="image",
    input_shape=(28, 28, 1),
    classes=10,
    layers=(
        conv2d(32, 3), act("relu"),
        conv2d(64, 3), act("relu"),
        maxpool(2), Layer("flatten"),
        dense(128), act("relu"),
        dense(10),
    ),
    loss="softmax_cross_entropy",
    output="softmax",
    optimizer=Optimizer("adam", learning_rate=1e-3),
    batch_size=128,
    epochs={"smoke": 1, "ci": 4, "quick": 1, "full": 12},  # ci: until its blocks are timed (harness.trial)
    target_accuracy={"mnist": 0.98, "fashion_mnist": 0.87},
    train_samples={"smoke": 512, "ci": 16384},
    test_samples={"smoke": 256, "ci": 1000},
    evals_per_epoch=4,
    datasets=("mnist", "fashion_mnist"),
    width_layers="conv2d",  # --width: the second convolution's filters (64 here; the first has half)
)
