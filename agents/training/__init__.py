"""Training: configs, run folders, the callback, train and resume (SB3 and tabular Q-learning), publishing a run into the zoo.

Imports policies (what it trains) and evaluation (validation and the final test run the one episode loop).
"""
