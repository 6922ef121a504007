"""MNIST MLP: the classic Keras example without dropout."""
from workloads.spec import Optimizer, WorkloadSpec, act, dense

SPEC = WorkloadSpec(
    name="mnist_mlp",
    description="784 -> 512 ReLU -> 512 ReLU -> 10, softmax cross-entropy, Adam 1e-3, batch 128",
    dataset="image",
    input_shape=(784,),
    classes=10,
    layers=(dense(512), act("relu"), dense(512), act("relu"), dense(10)),
    loss="softmax_cross_entropy",
    output="softmax",
    optimizer=Optimizer("adam", learning_rate=1e-3),
    batch_size=128,
    epochs={"smoke": 2, "ci": 40, "quick": 3, "full": 20},  # ci: until its blocks are timed (harness.trial)
    target_accuracy={"mnist": 0.97, "fashion_mnist": 0.85},
    train_samples={"smoke": 512, "ci": 16384},
    test_samples={"smoke": 256, "ci": 1000},
    evals_per_epoch=4,
    datasets=("mnist", "fashion_mnist"),
    width_layers="dense",  # --width: the hidden layers' units (512 here)
)
