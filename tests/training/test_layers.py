"""Highway layers: the math against NumPy, carry behaviour, config and saving."""

import keras
import numpy as np
import pytest

from training.layers import DEFAULT_GATE_BIAS, Highway, HighwayConv2D, gate_bias_for_depth


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _conv_same(x, kernel):
    """Independent 'same' convolution (TF's padding: extra row/column at the end)."""
    kh, kw = kernel.shape[:2]
    top, left = (kh - 1) // 2, (kw - 1) // 2
    padded = np.pad(x, ((0, 0), (top, kh - 1 - top), (left, kw - 1 - left), (0, 0)))
    n, h, w, _ = x.shape
    out = np.zeros((n, h, w, kernel.shape[-1]))
    for i in range(kh):
        for j in range(kw):
            out += np.einsum("nhwc,cd->nhwd", padded[:, i:i + h, j:j + w, :], kernel[i, j])
    return out


def _randomise(layer, rng):
    layer.set_weights(
        [rng.normal(size=w.shape).astype("float32") * 0.5 for w in layer.get_weights()]
    )


def test_dense_highway_matches_numpy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 7)).astype("float32")
    layer = Highway()
    layer.build(x.shape)
    _randomise(layer, rng)
    w, b, wt, bt = (np.asarray(v, np.float64) for v in layer.get_weights())
    h = np.maximum(x @ w + b, 0)
    t = _sigmoid(x @ wt + bt)
    y, gate = layer(x, return_gate=True)
    np.testing.assert_allclose(y, h * t + x * (1 - t), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gate, t, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kernel_size", [2, 3])
def test_conv_highway_matches_numpy(kernel_size):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 6, 6, 3)).astype("float32")
    layer = HighwayConv2D(kernel_size=kernel_size, activation="tanh")
    layer.build(x.shape)
    _randomise(layer, rng)
    w, b, wt, bt = (np.asarray(v, np.float64) for v in layer.get_weights())
    h = np.tanh(_conv_same(x, w) + b)
    t = _sigmoid(_conv_same(x, wt) + bt)
    np.testing.assert_allclose(layer(x), h * t + x * (1 - t), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("layer", [Highway(gate_bias_init=-40.0),
                                   HighwayConv2D(3, gate_bias_init=-40.0)], ids=["dense", "conv"])
def test_very_negative_gate_bias_makes_the_layer_the_identity(layer):
    x = np.random.default_rng(2).normal(size=(3, 5, 5, 4) if isinstance(layer, HighwayConv2D)
                                        else (3, 4)).astype("float32")
    np.testing.assert_allclose(layer(x), x, atol=1e-6)


def test_gate_bias_starts_at_the_configured_value_and_weights_are_named():
    layer = Highway(gate_bias_init=-3.0, name="hw")
    layer.build((None, 4))
    paths = [w.path for w in layer.weights]
    assert paths == ["hw/kernel", "hw/bias", "hw/gate_kernel", "hw/gate_bias"]
    np.testing.assert_array_equal(layer.gate_bias.numpy(), np.full(4, -3.0, np.float32))
    assert DEFAULT_GATE_BIAS < 0


def test_gate_bias_for_depth_rule():
    depths = (9, 10, 11, 20, 30, 31, 50, 51, 100, 1000)
    assert [gate_bias_for_depth(d) for d in depths] == [
        -1.0, -1.0, -2.0, -2.0, -3.0, -5.0, -5.0, -8.0, -8.0, -8.0]


@pytest.mark.parametrize("bad", [0.0, 1.5, float("nan"), float("-inf"), "x", True])
def test_gate_bias_must_be_a_negative_number(bad):
    with pytest.raises(ValueError, match=r"Expected a negative float. Received: gate_bias_init="):
        Highway(gate_bias_init=bad)


@pytest.mark.parametrize("bad", [0, -1, (3,), (2, 2, 2), 2.5])
def test_kernel_size_must_be_positive_ints(bad):
    with pytest.raises(ValueError, match="Received: kernel_size="):
        HighwayConv2D(kernel_size=bad)


def test_conv_layer_needs_known_channels():
    with pytest.raises(ValueError, match="Expected a 4D channels-last input"):
        HighwayConv2D(3).build((None, 28, 28))


def test_config_round_trips():
    layer = HighwayConv2D(kernel_size=(3, 2), activation="tanh", gate_bias_init=-2.5, name="hc")
    clone = HighwayConv2D.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert clone.kernel_size == (3, 2) and clone.gate_bias_init == -2.5


def test_saved_model_reproduces_outputs_exactly(tmp_path):
    inputs = keras.Input((6, 6, 2))
    x = HighwayConv2D(3, name="hc")(inputs)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(8)(x)
    outputs = Highway(gate_bias_init=-2.0, name="hd")(x)
    model = keras.Model(inputs, outputs)
    data = np.random.default_rng(3).normal(size=(4, 6, 6, 2)).astype("float32")
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(loaded.predict(data, verbose=0), model.predict(data, verbose=0))
    assert isinstance(loaded.get_layer("hd"), Highway)
    assert loaded.get_layer("hc").get_config() == model.get_layer("hc").get_config()
