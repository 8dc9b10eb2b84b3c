"""What other parts may use of ``training``: the one surface export reads a model through.

Loading a ``.keras`` file needs the highway layer classes, so ``export`` depends on
``training``; this module keeps that dependency to a short, named list instead of
imports scattered over training's internals. Importing it does not import
TensorFlow: the functions that need Keras import it when called, so CLIs can
refuse bad arguments before TensorFlow's seconds of start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from training.data import DATA_DIR_ENV, Mnist, MnistDataError, load_mnist
from training.quiet import import_tensorflow

if TYPE_CHECKING:
    import keras

__all__ = ["DATA_DIR_ENV", "Mnist", "MnistDataError", "highway_layer_names", "import_tensorflow",
           "load_model", "load_mnist", "with_gate_activity"]


def load_model(path: str) -> keras.Model:
    """A trained model from a ``.keras`` file, the highway layers registered (not compiled)."""
    import_tensorflow()
    import keras

    import training.layers  # noqa: F401  (registers the highway layers for deserialisation)

    return keras.models.load_model(path, compile=False)


def highway_layer_names(model: keras.Model) -> list[str]:
    """The names of the model's highway layers, input to output."""
    from training.models import highway_layers

    return [layer.name for layer in highway_layers(model)]


def with_gate_activity(model: keras.Model) -> keras.Model:
    """A twin of ``model`` sharing its weights with a second output, each highway layer's mean
    transform-gate value per image (``gate_activity``); ValueError if it cannot be traced."""
    from training.models import with_gate_activity as twin

    return twin(model)
