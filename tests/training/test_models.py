"""The model zoo: shapes, parameter counts, raw-pixel input, gate-activity model."""

import keras
import numpy as np
import pytest

from training import models
from training.layers import Highway, HighwayConv2D


@pytest.mark.parametrize(
    ("name", "params", "tolerance"),
    [("seed", 65_240, 0), ("conv16", 39_000, 0.05), ("conv32", 151_000, 0.05)],
)
def test_parameter_counts(name, params, tolerance):
    count = models.build(name).count_params()
    assert abs(count - params) <= tolerance * params, count


def test_exact_conv_counts_match_the_documented_figures():
    assert models.build("conv16").count_params() == 38_986
    assert models.build("conv32").count_params() == 151_690


def test_dropout_adds_no_parameters_and_acts_only_in_training():
    model = models.build("conv32", dropout=0.2)
    assert model.count_params() == 151_690
    assert [layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)] \
        == [0.2, 0.2, 0.2]  # one after each pooling stage
    x = np.random.default_rng(0).integers(0, 256, (4, 28, 28), dtype=np.uint8)
    np.testing.assert_array_equal(model(x, training=False), model(x, training=False))
    assert not np.array_equal(model(x, training=True), model(x, training=False))
    plain = models.build("conv32").layers
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in plain)


@pytest.mark.parametrize("name", models.MODEL_NAMES)
def test_models_take_raw_uint8_pixels_and_return_probabilities(name):
    model = models.build(name, depth=4)
    assert model.inputs[0].dtype == "uint8" and tuple(model.inputs[0].shape) == (None, 28, 28)
    x = np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    p = model.predict(x, verbose=0)
    assert p.shape == (3, 10)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)


def test_conv_models_have_eight_highway_layers_of_3x3():
    layers = models.highway_layers(models.build("conv32"))
    assert len(layers) == 8
    assert all(isinstance(layer, HighwayConv2D) and layer.kernel_size == (3, 3) for layer in layers)


def test_seed_keeps_one_channel_in_its_three_highway_layers():
    layers = models.highway_layers(models.build("seed"))
    assert [tuple(layer.kernel.shape) for layer in layers] == [(2, 2, 1, 1)] * 3


def test_fc_highway_and_plain_have_about_the_same_parameters_per_layer():
    highway = models.fc(depth=20)
    plain = models.fc(depth=20, plain=True)
    assert len(models.highway_layers(highway)) == 19
    assert all(isinstance(layer, Highway) for layer in models.highway_layers(highway))
    assert models.highway_layers(plain) == []
    per_layer_highway = 2 * (50 * 50 + 50)
    per_layer_plain = 71 * 71 + 71
    assert abs(per_layer_highway - per_layer_plain) / per_layer_plain < 0.01
    # Depth 20 uses the paper's gate bias for that depth.
    assert models.highway_layers(highway)[0].gate_bias_init == -2.0


def test_fc_depth_must_be_at_least_two():
    with pytest.raises(ValueError, match="Received: depth=1"):
        models.fc(depth=1)


def test_unknown_model_is_refused():
    with pytest.raises(ValueError, match="Unknown model 'resnet'"):
        models.build("resnet")


def test_gate_activity_model_shares_weights_and_reports_mean_gates():
    model = models.build("fc", depth=4)
    gated = models.with_gate_activity(model)
    x = np.random.default_rng(1).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    out = gated.predict(x, verbose=0)
    np.testing.assert_allclose(out["probabilities"], model.predict(x, verbose=0), atol=1e-6)
    assert out["gate_activity"].shape == (5, 3)
    # Independent computation of layer 1's mean gate from its weights.
    hidden = keras.Model(model.inputs, model.get_layer("dense0").output).predict(x, verbose=0)
    first = model.get_layer("highway1")
    t = 1 / (1 + np.exp(-(hidden @ first.gate_kernel.numpy() + first.gate_bias.numpy())))
    np.testing.assert_allclose(out["gate_activity"][:, 0], t.mean(axis=1), rtol=1e-5)
    # Weights are shared, not copied: changing the model changes the gate model.
    first.gate_bias.assign(np.full(50, -50.0, np.float32))
    assert gated.predict(x, verbose=0)["gate_activity"][:, 0].max() < 1e-10


def test_gate_activity_needs_highway_layers():
    with pytest.raises(ValueError, match="has none"):
        models.with_gate_activity(models.fc(depth=3, plain=True))
