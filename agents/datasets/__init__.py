"""Perception datasets: collection from the world's ground truth, reading and checking them, and the net's training and evaluation runs."""
