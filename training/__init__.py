"""Training: MNIST data, Keras highway layers, the model zoo and the trainer CLI."""
