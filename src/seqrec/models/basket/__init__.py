"""Next-basket models: basket encoders and models over orders (``basket-rnn``) and the
frequency / neighbourhood baselines."""

from seqrec.models.basket import rnn, tifu_knn, topfreq, upcf

__all__ = ["rnn", "tifu_knn", "topfreq", "upcf"]
