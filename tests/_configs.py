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

TINY_BASKETS = """\
name = "nb"
[data]
dataset = "synthetic-baskets"
[data.synthetic_baskets]
n_users = 120
n_items = 60
mean_baskets = 6.0
max_baskets = 12
mean_size = 4.0
n_staples = 4.0
[preprocess]
min_session_length = 1
min_item_support = 1
[split]
method = "leave-one-out"
[model]
name = "tifu-knn"
"""
"""A synthetic next-basket experiment (TIFU-KNN) that runs in about a second."""
