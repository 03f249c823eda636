"""Policies and the application layer (training, benchmarking, the ``drive-sim`` command)."""
