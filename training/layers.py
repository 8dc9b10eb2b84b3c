"""Highway layers (Srivastava, Greff & Schmidhuber, 2015), backend-agnostic Keras 3.

Both layers compute

    y = H(x) * T(x) + x * (1 - T(x))
    H(x) = activation(W_H x + b_H)        the transform, weights ``kernel``/``bias``
    T(x) = sigmoid(W_T x + b_T)           the transform gate, ``gate_kernel``/``gate_bias``

and keep the shape of their input, so the carry term ``x * (1 - T)`` needs no
projection. ``call(x, return_gate=True)`` also returns T, which the export and
the gate analysis read.
"""

from __future__ import annotations

import math

import keras
from keras import ops

# Why -1: the paper initialises b_T to about -1, -2, -3 for depths ~10, 20, 30
# so that every layer starts close to the identity (T ~ 0.27 at -1) and the
# signal crosses the whole stack on the first step. Our most used models (the
# paper's MNIST conv nets) have 8-9 highway layers, i.e. depth ~10.
DEFAULT_GATE_BIAS = -1.0


# (most layers, gate bias): the paper's rule of thumb up to 30 layers; beyond, the best
# biases of our balanced search at 50 and 100 layers (docs/RESULTS.md, Figure 1).
GATE_BIAS_BY_DEPTH = ((10, -1.0), (20, -2.0), (30, -3.0), (50, -5.0), (None, -8.0))


def gate_bias_for_depth(depth: int) -> float:
    """The initial gate bias of a highway net of ``depth`` layers (``GATE_BIAS_BY_DEPTH``).

    The paper suggests -1, -2 and -3 for about 10, 20 and 30 layers and leaves deeper
    nets to its hyperparameter search; -3 at 50 and 100 layers trains badly or diverges.
    """
    for most, bias in GATE_BIAS_BY_DEPTH:
        if most is None or depth <= most:
            return bias
    raise AssertionError("unreachable: the last entry has no bound")


def _check_gate_bias(value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value >= 0
    ):
        raise ValueError(f"Expected a negative float. Received: gate_bias_init={value!r}")
    return float(value)


class _HighwayBase(keras.layers.Layer):
    """Shared constructor, gate arithmetic and config of both highway layers."""

    def __init__(
        self,
        activation: str = "relu",
        gate_bias_init: float = DEFAULT_GATE_BIAS,
        kernel_initializer: str = "glorot_uniform",
        gate_kernel_initializer: str = "glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.gate_bias_init = _check_gate_bias(gate_bias_init)
        self.activation = keras.activations.get(activation)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.gate_kernel_initializer = keras.initializers.get(gate_kernel_initializer)

    def _add_weights(self, kernel_shape: tuple[int, ...], units: int) -> None:
        self.kernel = self.add_weight(
            name="kernel", shape=kernel_shape, initializer=self.kernel_initializer
        )
        self.bias = self.add_weight(name="bias", shape=(units,), initializer="zeros")
        self.gate_kernel = self.add_weight(
            name="gate_kernel", shape=kernel_shape, initializer=self.gate_kernel_initializer
        )
        self.gate_bias = self.add_weight(
            name="gate_bias",
            shape=(units,),
            initializer=keras.initializers.Constant(self.gate_bias_init),
        )

    def _combine(self, x, h_logits, t_logits, return_gate: bool):
        h = self.activation(h_logits)
        t = ops.sigmoid(t_logits)
        y = h * t + x * (1.0 - t)
        return (y, t) if return_gate else y

    def compute_output_shape(self, input_shape):
        return input_shape

    def compute_output_spec(self, inputs, return_gate: bool = False):
        spec = keras.KerasTensor(inputs.shape, dtype=self.compute_dtype)
        if not return_gate:
            return spec
        return spec, keras.KerasTensor(inputs.shape, dtype=self.compute_dtype)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "activation": keras.activations.serialize(self.activation),
                "gate_bias_init": self.gate_bias_init,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "gate_kernel_initializer": keras.initializers.serialize(
                    self.gate_kernel_initializer
                ),
            }
        )
        return config


@keras.saving.register_keras_serializable(package="highway")
class Highway(_HighwayBase):
    """Fully connected highway layer: ``y = H(x)·T(x) + x·(1 − T(x))``.

    Args:
        activation: activation of the transform H. Default ``"relu"``.
        gate_bias_init: initial value of the gate bias b_T; must be negative so
            that the layer starts by carrying its input. Default -1.0 (the
            paper's value for depth ~10; see ``gate_bias_for_depth``).
        kernel_initializer: initializer of H's kernel.
        gate_kernel_initializer: initializer of T's kernel.
        **kwargs: base layer arguments (``name``, ``dtype``…).

    Input shape:
        ``(batch, ..., units)``; the last dimension must be known.

    Output shape:
        the input shape. With ``return_gate=True`` the call returns ``(y, T)``,
        both of that shape.
    """

    def build(self, input_shape):
        units = input_shape[-1]
        if units is None:
            raise ValueError(
                f"Expected a known last dimension. Received: input_shape={input_shape}"
            )
        self._add_weights((units, units), units)

    def call(self, inputs, return_gate: bool = False):
        h_logits = ops.matmul(inputs, self.kernel) + self.bias
        t_logits = ops.matmul(inputs, self.gate_kernel) + self.gate_bias
        return self._combine(inputs, h_logits, t_logits, return_gate)


@keras.saving.register_keras_serializable(package="highway")
class HighwayConv2D(_HighwayBase):
    """Convolutional highway layer; H and T are same-padded convolutions.

    The number of filters equals the number of input channels and the stride is
    1, so the output has the input's shape and the carry needs no projection.

    Args:
        kernel_size: int or pair, size of both convolutions (H's and T's).
        activation: activation of the transform H. Default ``"relu"``.
        gate_bias_init: initial gate bias b_T, negative. Default -1.0.
        kernel_initializer: initializer of H's kernel.
        gate_kernel_initializer: initializer of T's kernel.
        **kwargs: base layer arguments.

    Input shape:
        ``(batch, height, width, channels)`` (channels last); channels known.

    Output shape:
        the input shape; with ``return_gate=True``, ``(y, T)`` of that shape.
    """

    def __init__(self, kernel_size: int | tuple[int, int] = 3, **kwargs):
        super().__init__(**kwargs)
        size = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        if (
            not isinstance(size, tuple | list)
            or len(size) != 2
            or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in size)
        ):
            raise ValueError(
                f"Expected a positive int or a pair of them. Received: kernel_size={kernel_size!r}"
            )
        self.kernel_size = tuple(size)

    def build(self, input_shape):
        if len(input_shape) != 4 or input_shape[-1] is None:
            raise ValueError(
                "Expected a 4D channels-last input with known channels. "
                f"Received: input_shape={input_shape}"
            )
        channels = input_shape[-1]
        self._add_weights((*self.kernel_size, channels, channels), channels)

    def call(self, inputs, return_gate: bool = False):
        h_logits = ops.conv(inputs, self.kernel, strides=1, padding="same") + self.bias
        t_logits = ops.conv(inputs, self.gate_kernel, strides=1, padding="same") + self.gate_bias
        return self._combine(inputs, h_logits, t_logits, return_gate)

    def get_config(self) -> dict:
        config = super().get_config()
        config["kernel_size"] = list(self.kernel_size)
        return config


HIGHWAY_LAYERS = (Highway, HighwayConv2D)


def is_highway(layer: keras.layers.Layer) -> bool:
    """True for the layers whose gate the export and the gate analysis read."""
    return isinstance(layer, HIGHWAY_LAYERS)
