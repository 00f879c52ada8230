"""Experiment files shared by the CLI and experiment tests."""

TINY = """\
name = "tiny"
seed = 0

[data]
dataset = "synthetic"

[data.synthetic]
n_sessions = 150
n_items = 20
seed = 1

[preprocess]
min_item_support = 1

[split]
method = "time"
test_days = 6
valid_days = 6

[model]
name = "gru4rec"
layers = [8]

[objective]
n_sample = 0

[train]
epochs = 1
batch_size = 16
progress = false
"""
"""A synthetic GRU4Rec experiment that runs in about a second."""
