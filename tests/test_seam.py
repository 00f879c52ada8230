"""The seam: the facade, evaluator, trainer and artifact code never name a model."""

import inspect
import re

import pytest

import seqrec.artifact
import seqrec.evaluate
import seqrec.recommender
import seqrec.train
from seqrec.models import MODELS

SEAM = [seqrec.recommender, seqrec.evaluate, seqrec.train, seqrec.artifact]


def _names() -> set[str]:
    out = set()
    for spec in MODELS.values():
        out.add(spec.name)
        out.add(spec.config.__name__)
        out.add(spec.config.__name__.removesuffix("Config"))
        if spec.objective is not None:
            out.add(spec.objective.__name__)
    return out


@pytest.mark.parametrize("module", SEAM, ids=lambda m: m.__name__)
def test_seam_module_names_no_model(module):
    source = inspect.getsource(module)
    found = sorted(n for n in _names() if re.search(rf"(?<![\w.-]){re.escape(n)}(?![\w-])", source))
    assert not found, f"{module.__name__} names model(s) {found}"
    assert "isinstance(model" not in source.replace("isinstance(model, SupportsReplay)", "")
