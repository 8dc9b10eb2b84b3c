"""What every part of the project agrees on, without TensorFlow or gRPC.

Training, export, the server and the benchmark all import from here: the
model's tensor names and image size (:mod:`highway_core.facts`), the batching
defaults and the version-folder rule, and the MNIST IDX reader
(:mod:`highway_core.idx`), and the gate-drift math that the server and the
drift experiment share (:mod:`highway_core.drift`). The server image ships
this package; it depends on NumPy only.
"""
