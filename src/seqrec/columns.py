"""Canonical column names used by every frame inside seqrec.

Readers rename the columns of a raw file to these names; everything downstream
(preprocessing, splitting, :class:`~seqrec.data.SequenceData`) relies on them.
"""

from __future__ import annotations

from typing import Final


class Columns:
    """Names of the canonical columns of an interaction log."""

    session: Final = "session_id"
    """The sequence key: a session, or a user when each user is one session."""
    user: Final = "user_id"
    """The user, when it differs from the session (optional)."""
    item: Final = "item_id"
    """The item (external id, any integer or string)."""
    time: Final = "timestamp"
    """Event time in unix seconds (float64)."""
    rating: Final = "rating"
    """Explicit rating (optional, float64)."""
    basket: Final = "basket_id"
    """The basket/order an event belongs to (next-basket data, optional)."""
    order_dow: Final = "order_dow"
    """Basket context: day of week of the order (0-6), constant within a basket."""
    order_hour: Final = "order_hour_of_day"
    """Basket context: hour of day of the order (0-23)."""
    days_since_prior: Final = "days_since_prior_order"
    """Basket context: days since the user's previous order (0 for the first)."""


#: Per-basket context columns, in the order models receive them.
BASKET_CONTEXT: Final = (Columns.order_dow, Columns.order_hour, Columns.days_since_prior)


__all__ = ["BASKET_CONTEXT", "Columns"]
