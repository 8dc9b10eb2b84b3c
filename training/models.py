"""The model zoo: functional Keras models that take raw uint8 MNIST pixels.

Every model starts with ``Rescaling(1/255)`` so that the exported ONNX model
takes ``uint8 [N, 28, 28]`` and does its own scaling. Functional models only:
tf2onnx's ``from_keras`` fails on Keras 3 ``Sequential`` models.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import layers, ops

from highway_core.facts import IMAGE_SHAPE, INPUT_NAME, NUM_CLASSES, PROBABILITIES
from training.config import MODEL_NAMES
from training.layers import Highway, HighwayConv2D, gate_bias_for_depth, is_highway


def _inputs() -> tuple[keras.KerasTensor, keras.KerasTensor]:
    images = keras.Input(shape=IMAGE_SHAPE, dtype="uint8", name=INPUT_NAME)
    scaled = layers.Rescaling(1.0 / 255.0, name="scale")(images)
    return images, scaled


def seed() -> keras.Model:
    """The seed's network: [HighwayConv2D(2x2) → MaxPool]×3 → Dense 300 → 200 → 10.

    The highway layers keep the input's single channel: 65,240 parameters.
    """
    images, x = _inputs()
    x = layers.Reshape((*IMAGE_SHAPE, 1), name="reshape")(x)
    for i in range(1, 4):
        x = HighwayConv2D(kernel_size=2, name=f"highway_conv{i}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(300, activation="relu", name="dense1")(x)
    x = layers.Dropout(0.5, name="dropout1")(x)
    x = layers.Dense(200, activation="relu", name="dense2")(x)
    x = layers.Dropout(0.5, name="dropout2")(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name=PROBABILITIES)(x)
    return keras.Model(images, outputs, name="seed")


def conv(width: int, stages: tuple[int, ...] = (2, 3, 3), dropout: float = 0.0) -> keras.Model:
    """The paper's MNIST conv net: a plain 5×5 conv, then 8 highway 3×3 convs.

    Three 2×2 max-poolings separate the stages (28 → 14 → 7 → 3), then flatten
    and softmax: 9 convolutional layers followed by a softmax output (Table 1 of
    "Training Very Deep Networks"). ``width`` 16 gives 38,986 parameters, 32
    gives 151,690.
    """
    images, x = _inputs()
    x = layers.Reshape((*IMAGE_SHAPE, 1), name="reshape")(x)
    x = layers.Conv2D(width, 5, padding="same", activation="relu", name="conv0")(x)
    n = 0
    for s, count in enumerate(stages, start=1):
        for _ in range(count):
            n += 1
            x = HighwayConv2D(kernel_size=3, gate_bias_init=gate_bias_for_depth(sum(stages) + 1),
                              name=f"highway_conv{n}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{s}")(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"dropout{s}")(x)
    x = layers.Flatten(name="flatten")(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name=PROBABILITIES)(x)
    return keras.Model(images, outputs, name=f"conv{width}")


def fc(depth: int = 10, plain: bool = False, gate_bias_init: float | None = None) -> keras.Model:
    """The paper's depth experiment: a plain first layer, then depth−1 more layers.

    Highway: 50 units a layer; plain: 71 units (about the same parameters per
    layer: 5,100 vs 5,112). Softmax output.
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 2:
        raise ValueError(f"Expected an int depth >= 2. Received: depth={depth!r}")
    images, x = _inputs()
    x = layers.Flatten(name="flatten")(x)
    units = 71 if plain else 50
    x = layers.Dense(units, activation="relu", name="dense0")(x)
    bias = gate_bias_init if gate_bias_init is not None else gate_bias_for_depth(depth)
    for i in range(1, depth):
        if plain:
            x = layers.Dense(units, activation="relu", name=f"dense{i}")(x)
        else:
            x = Highway(gate_bias_init=bias, name=f"highway{i}")(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name=PROBABILITIES)(x)
    return keras.Model(images, outputs, name=f"{'plain' if plain else 'highway'}_fc{depth}")


def build(name: str, depth: int = 10, plain: bool = False, dropout: float = 0.0) -> keras.Model:
    """Build a zoo model by name (``seed``, ``conv16``, ``conv32``, ``fc``)."""
    builders: dict[str, Callable[[], keras.Model]] = {
        "seed": seed,
        "conv16": lambda: conv(16, dropout=dropout),
        "conv32": lambda: conv(32, dropout=dropout),
        "fc": lambda: fc(depth, plain),
    }
    if name not in builders:
        raise ValueError(f"Unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
    return builders[name]()


def highway_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The model's highway layers, in graph order."""
    return [layer for layer in model.layers if is_highway(layer)]


class _GateProbe(keras.layers.Layer):
    """Calls a highway layer with ``return_gate=True`` from a fresh operation.

    Keras 3 sizes a re-used layer's outputs by its *first* call (one tensor), so
    a second call that returns ``(y, T)`` loses T ("not connected to inputs").
    A new wrapper whose first call returns the pair avoids that; the wrapped
    layer, and so its weights, are shared.
    """

    def __init__(self, layer: keras.layers.Layer):
        super().__init__(name=f"{layer.name}_probe", dtype=layer.dtype_policy)
        self.layer = layer

    def call(self, inputs):
        return self.layer(inputs, return_gate=True)

    def compute_output_spec(self, inputs):
        return self.layer.compute_output_spec(inputs, return_gate=True)


def with_gate_activity(model: keras.Model) -> keras.Model:
    """A model sharing ``model``'s weights with two outputs.

    ``probabilities`` [N, 10] as before, and ``gate_activity`` [N, L]: for each
    image, the mean transform-gate value T of each of the L highway layers.

    Keras 3 cannot add an output to an already-built graph ("not connected to
    inputs"), so the chain is traced again from a fresh input, calling the same
    layer objects (shared weights) with ``return_gate=True``. Works for the
    zoo's single-chain models; anything else is refused.
    """
    chain = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    for previous, layer in zip([None, *chain], chain, strict=False):
        expected = model.inputs[0] if previous is None else previous.output
        if layer.input is not expected:
            raise ValueError(
                f"Expected a single-chain model. Received: layer {layer.name!r} does not "
                "take the previous layer's output"
            )
    images = keras.Input(shape=model.inputs[0].shape[1:], dtype=model.inputs[0].dtype,
                         name=INPUT_NAME)
    x, means = images, []
    for layer in chain:
        if is_highway(layer):
            x, t = _GateProbe(layer)(x)
            means.append(ops.mean(t, axis=tuple(range(1, len(t.shape))), keepdims=False)[:, None])
        else:
            x = layer(x)
    if not means:
        raise ValueError(f"Expected a model with highway layers. Received: {model.name!r} has none")
    gates = means[0] if len(means) == 1 else ops.concatenate(means, axis=1)
    return keras.Model(images, {"probabilities": x, "gate_activity": gates},
                       name=f"{model.name}_with_gates")
