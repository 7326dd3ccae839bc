"""ML Service: a self-hosted platform to train, serve and monitor tabular classifiers."""

__version__ = "0.12.0"
