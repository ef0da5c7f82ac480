"""Train the two deeper benchmark networks of docs/conversion.md ("Remedies"): a VGG-style CNN
(max pooling) and a ResNet-style CNN (residual Add blocks, global average pooling) on
scikit-learn's 8x8 digits upscaled to 32x32 and augmented with random shifts and small
rotations. Offline (the data ships inside scikit-learn), seeded, a few minutes on 2 cores.

Run from the repository root:  PYTHONPATH=. .venv/bin/python scripts/train_deep.py
Writes resources/deep/: digits32_vgg.keras, digits32_resnet.keras, digits32_test.npz (360 held-out
samples), digits32_calibration.npz (300 training samples, no labels; compressed npz).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

SEED = 2121
N_TEST = 360
N_CALIBRATION = 300
EPOCHS = 12
OUT = Path(__file__).resolve().parent.parent / "resources" / "deep"


def upscale(images: np.ndarray) -> np.ndarray:
    """(N, 8, 8) in [0, 16] -> (N, 32, 32, 1) float32 in [0, 1], bilinear (scipy's zoom, order 1)."""
    from scipy.ndimage import zoom

    x = zoom(images.astype(np.float32) / 16.0, (1, 4, 4), order=1)
    return np.clip(x, 0, 1)[..., None].astype(np.float32)


def augment(x: np.ndarray, rng, copies: int) -> np.ndarray:
    """``copies`` shifted (+-3 px) and rotated (+-12 degrees) versions of every image."""
    from scipy.ndimage import rotate, shift

    out = []
    for _ in range(copies):
        for img in x[..., 0]:
            a = rotate(img, rng.uniform(-12, 12), reshape=False, order=1)
            a = shift(a, rng.integers(-3, 4, size=2), order=0)
            out.append(np.clip(a, 0, 1))
    return np.asarray(out, np.float32)[..., None]


def vgg():
    import keras
    from keras import layers

    c = lambda n, name: layers.Conv2D(n, 3, padding="same", activation="relu", name=name)  # noqa: E731
    return keras.Sequential([
        keras.Input(shape=(32, 32, 1), name="input"),
        c(16, "conv1_1"), c(16, "conv1_2"), layers.MaxPooling2D(2, name="pool1"),
        c(32, "conv2_1"), c(32, "conv2_2"), layers.MaxPooling2D(2, name="pool2"),
        c(64, "conv3_1"), c(64, "conv3_2"), layers.MaxPooling2D(2, name="pool3"),
        layers.Flatten(name="flatten"),
        layers.Dense(128, activation="relu", name="fc1"),
        layers.Dropout(0.3, name="dropout"),
        layers.Dense(10, activation="softmax", name="output"),
    ], name="digits32_vgg")


def resnet():
    import keras
    from keras import layers

    inp = keras.Input(shape=(32, 32, 1), name="input")
    x = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="stem")(inp)
    for i, (n, stride) in enumerate([(16, 1), (32, 2), (64, 2)]):
        y = layers.Conv2D(n, 3, strides=stride, padding="same", activation="relu", name=f"b{i}_conv1")(x)
        y = layers.Conv2D(n, 3, padding="same", name=f"b{i}_conv2")(y)
        if stride != 1 or x.shape[-1] != n:
            x = layers.Conv2D(n, 1, strides=stride, name=f"b{i}_skip")(x)
        x = layers.Activation("relu", name=f"b{i}_relu")(layers.Add(name=f"b{i}_add")([x, y]))
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    out = layers.Dense(10, activation="softmax", name="output")(x)
    return keras.Model(inp, out, name="digits32_resnet")


def main() -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x_tr, x_te, y_tr, y_te = train_test_split(digits.images, digits.target.astype(np.int64), test_size=N_TEST,
                                              stratify=digits.target, random_state=SEED)
    x_tr, x_te = upscale(x_tr), upscale(x_te)
    rng = np.random.default_rng(SEED)
    x_aug = np.concatenate([x_tr, augment(x_tr, rng, 2)])
    y_aug = np.concatenate([y_tr] * 3)
    OUT.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT / "digits32_test.npz", x=x_te, y=y_te)
    np.savez_compressed(OUT / "digits32_calibration.npz", x=x_tr[:N_CALIBRATION])
    for build in (vgg, resnet):
        keras.utils.set_random_seed(SEED)
        model = build()
        model.compile(optimizer=keras.optimizers.Adam(2e-3), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        model.fit(x_aug, y_aug, batch_size=64, epochs=EPOCHS, verbose=0, shuffle=True)
        acc = float((model.predict(x_te, verbose=0).argmax(axis=1) == y_te).mean())
        export = build()
        export.set_weights(model.get_weights())
        path = OUT / f"{model.name}.keras"
        export.save(path)
        print(f"{model.name}: test accuracy {100 * acc:.2f} %, {model.count_params()} parameters -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
