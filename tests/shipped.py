"""Which versions of the shipped model are which: the one home the tests read it from.

The fp32 version is the trained model (``model.keras`` beside its ONNX export); the
int8 version, its quantized twin, is the highest, so a request without a version
gets it (Triton's "latest" policy, as ``config.pbtxt`` applies it). Lower versions are
earlier models, kept on disk as a record and not served.
"""

from pathlib import Path

from highway_core.facts import MODEL_NAME, SHIPPED_FP32_VERSION, SHIPPED_INT8_VERSION

MODEL_DIR = Path(__file__).resolve().parents[1] / "models" / MODEL_NAME
FP32_VERSION = SHIPPED_FP32_VERSION
INT8_VERSION = SHIPPED_INT8_VERSION
FP32_DIR = MODEL_DIR / str(FP32_VERSION)
INT8_DIR = MODEL_DIR / str(INT8_VERSION)
