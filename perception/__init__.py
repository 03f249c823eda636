"""Perception: pure array/tensor transforms (CNN encoders, fusion). Imports no other project package."""
