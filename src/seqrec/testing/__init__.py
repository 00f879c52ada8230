"""The contract every model passes, shipped in the package so a new model is tested by
registering it (rule 11).

:func:`contract_checks` lists the checks; each takes a :class:`ContractCase` (a fitted
Recommender on the planted synthetic task plus its held-out part). A test module
parametrises over :data:`seqrec.models.MODELS` × the checks::

    @pytest.mark.parametrize("name", sorted(MODELS))
    @pytest.mark.parametrize("check", contract_checks(), ids=lambda c: c.__name__)
    def test_contract(name, check, cases):
        check(cases(name))

The checks: the model learns the planted task (recall@20 inside its spec's
``planted_recall`` band, never above the oracle); a batch of queries and one query at a
time agree; evaluation through ``score`` equals brute force one query at a time, and the
replay fast path (where a model has one) gives identical ranks; save/load gives identical
recommendations; unknown items are dropped (or an error when asked); an empty history
gets the empty-prefix answer, flagged; exclusions and candidate sets hold.

Next-basket models (``spec.task == "next-basket"``) get the same checks on baskets
(``contract_checks("next-basket")``, :mod:`seqrec.testing.basket_contract`): the planted
basket task (:func:`planted_basket_task`, recall@10 inside ``planted_recall``), batch = one
query at a time, batched evaluation = each user alone, save/load, unknown/empty input, a flat
item list refused, exclusions and candidates, finite scores of the right shape.
"""

from seqrec.testing.basket_contract import N_BASKET_ITEMS, planted_basket_task
from seqrec.testing.contract import (
    N_ITEMS,
    ContractCase,
    contract_checks,
    fit_example,
    planted_task,
)

__all__ = [
    "N_BASKET_ITEMS",
    "N_ITEMS",
    "ContractCase",
    "contract_checks",
    "fit_example",
    "planted_basket_task",
    "planted_task",
]
