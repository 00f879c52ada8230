"""``seqrec models``: lists the registry; one model's keys; unknown names list the valid ones."""

import json

from seqrec.cli import main
from seqrec.models import MODELS


def test_models_lists_every_registered_model(capsys):
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == list(MODELS)


def test_one_model_shows_its_keys(capsys):
    assert main(["models", "gru4rec", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["takes_objective"] and "layers" in info["model"]
    assert info["train_defaults"]["optimizer"] == "adagrad"


def test_unknown_model_lists_valid_ones(capsys):
    assert main(["models", "nosuchmodel"]) == 2
    err = capsys.readouterr().err
    assert "unknown model 'nosuchmodel'" in err and "gru4rec" in err and "sknn" in err
