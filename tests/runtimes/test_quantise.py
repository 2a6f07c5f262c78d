"""int8 recipes (workflows/runtimes/quantise.py): the build's own, the others built beside it, bad names refused."""

from __future__ import annotations

import json

import pytest

from workflows.runtimes.quantise import DEFAULT, RECIPES, Recipe, recipe_named


def test_a_recipe_with_an_unknown_fusion_or_weight_type_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="fusion 'onnxsim': choose one of none, optimum, ort-bert"):
        Recipe(fusion="onnxsim")
    with pytest.raises(ValueError, match="weights 'int4': choose one of int8, uint8"):
        Recipe(weights="int4")
    with pytest.raises(ValueError, match="needs a fusion"):
        Recipe(fusion="none", gelu_approximation=True)


def test_an_unknown_recipe_name_lists_the_known_ones():
    with pytest.raises(ValueError) as refused:
        recipe_named("fastest")
    assert "no int8 recipe 'fastest'" in str(refused.value)
    assert all(name in str(refused.value) for name in RECIPES)
    assert recipe_named(DEFAULT) == Recipe()


def test_the_default_recipe_builds_the_same_file_as_the_build(artifacts, tmp_path):
    from workflows.runtimes.build import quantise_minilm

    named = quantise_minilm(tmp_path, artifacts["minilm-fp32"], recipe=DEFAULT, log=lambda m: None)
    assert named["sha256"] == artifacts["minilm-int8"]["sha256"]
    assert named["name"] == f"minilm-int8-{DEFAULT}" and named["params"]["recipe"] == DEFAULT


def test_another_recipe_is_built_beside_the_build_int8_never_over_it(artifacts, tmp_path):
    import numpy as np

    from workflows.runtimes.build import quantise_minilm
    from workflows.runtimes.embed import Embedder

    fp32 = artifacts["minilm-fp32"]
    own = quantise_minilm(tmp_path, fp32, log=lambda m: None)
    other = quantise_minilm(tmp_path, fp32, recipe="ort-bert", log=lambda m: None)
    manifests = {p.name: json.loads(p.read_text()) for p in (tmp_path / "manifests").glob("*.json")}
    assert manifests["minilm-int8.json"]["sha256"] == own["sha256"] == artifacts["minilm-int8"]["sha256"]
    assert manifests["minilm-int8-ort-bert.json"]["sha256"] == other["sha256"] != own["sha256"]
    assert other["params"]["recipe"] == "ort-bert" and other["params"]["precision"] == "int8"
    assert other["params"]["max_tokens"] == fp32["params"]["max_tokens"]
    texts = ["The striker scored twice as the club won the cup final.", "Il login non funziona da ieri sera."]
    a, b = Embedder(other).encode(texts).vectors, Embedder(fp32).encode(texts).vectors
    assert np.allclose((a ** 2).sum(axis=1), 1, atol=1e-4)
    assert float((a * b).sum(axis=1).min()) > 0.98
