"""The layout's rules, checked: import direction, no private cross-module imports, no cycles,
short functions, and scikit-learn conventions plus a lossless artifact round trip for every
estimator."""

from __future__ import annotations

import ast
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

import pyprofile
from pyprofile.models.synth.train import ConditionSampler, Nets
from pyprofile.models.synth.transformer import DataTransformer

PACKAGE = Path(pyprofile.__file__).parent
MAX_FUNCTION_LINES = 60
# What the estimators may never import: an engine, dbt, or the layers above them.
ENGINE_PACKAGES = ("duckdb", "ibis", "dbt", "pyspark", "sqlglot")
UPPER_LAYERS = ("pyprofile.warehouse", "pyprofile.flows", "pyprofile.report", "pyprofile.dbt")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


SOURCES = {
    _module_name(p): (p, ast.parse(p.read_text(), filename=str(p)))
    for p in sorted(PACKAGE.rglob("*.py"))
}


def _imports(tree: ast.AST) -> list[tuple[str, list[str]]]:
    """(module, imported names) of every import statement, module-level or inside functions."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.module, [alias.name for alias in node.names]))
    return out


def _targets(module: str, names: list[str]) -> list[str]:
    """pyprofile modules an import statement loads (``from pkg import submodule`` included)."""
    if not module.startswith("pyprofile"):
        return []
    subs = [f"{module}.{n}" for n in names if f"{module}.{n}" in SOURCES]
    return subs if subs and len(subs) == len(names) else [module, *subs]


def test_models_import_no_engine_and_no_upper_layer():
    offenders = []
    for name, (path, tree) in SOURCES.items():
        if not name.startswith("pyprofile.models"):
            continue
        for module, _ in _imports(tree):
            root = module.split(".")[0]
            if root in ENGINE_PACKAGES or module.startswith(UPPER_LAYERS):
                offenders.append(f"{path.relative_to(PACKAGE.parent)} imports {module}")
    assert not offenders, "\n".join(offenders)


def test_no_module_imports_a_private_name_of_another():
    offenders = []
    for name, (_, tree) in SOURCES.items():
        for module, names in _imports(tree):
            if not module.startswith("pyprofile") or module == name:
                continue
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            private += [p for p in module.split(".") if p.startswith("_")]
            if private:
                offenders.append(f"{name} imports {', '.join(private)} from {module}")
    assert not offenders, "\n".join(offenders)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles():
    graph = {
        name: {t for module, names in _imports(tree) for t in _targets(module, names)} - {name}
        for name, (_, tree) in SOURCES.items()
    }
    assert _cycles(graph) == []
    # the checker itself finds a cycle when there is one
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_function_is_longer_than_60_lines():
    long = [
        f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name} "
        f"({node.end_lineno - node.lineno + 1} lines)"
        for path, tree in SOURCES.values()
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, "\n".join(long)


def test_public_api():
    from pyprofile import (  # noqa: F401
        BGNBD,
        GammaGamma,
        PropensityModel,
        Recommender,
        Segmenter,
        Synthesizer,
        Warehouse,
        run_recommendations,
        run_scoring,
        run_segmentation,
        run_synthesizer,
    )

    assert set(pyprofile.__all__) >= {"Synthesizer", "Warehouse", "run_scoring"}
    with pytest.raises(AttributeError):
        pyprofile.NoSuchThing  # noqa: B018


# ----------------------------------------------------------------------- the six estimators
def _customers(n: int = 120, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "customer_id": np.arange(n),
            "order_count": rng.poisson(3, n),
            "monetary_amount": rng.gamma(2.0, 50.0, n),
            "region": rng.choice(["north", "south", "east"], n),
            "churned": np.arange(n) % 3 == 0,
        }
    )


def _interactions(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 400
    return pd.DataFrame(
        {
            "customer_id": rng.integers(0, 40, n).astype(str),
            "product_id": rng.integers(0, 15, n).astype(str),
            "weight": rng.integers(1, 4, n).astype(float),
            "timestamp": pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 300, n), "D"),
        }
    )


def _summary(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = 300
    T = rng.uniform(30, 400, n).round()
    x = rng.poisson(2, n).astype(float)
    recency = np.where(x > 0, np.floor(rng.uniform(0, 1, n) * T), 0.0)
    m = np.where(x > 0, rng.gamma(3.0, 15.0, n), 0.0)
    return x, recency, T, m


def _fitted(name: str):
    from pyprofile import (
        BGNBD,
        GammaGamma,
        PropensityModel,
        Recommender,
        Segmenter,
        Synthesizer,
    )

    frame = _customers()
    x, recency, T, m = _summary()
    fits = {
        "Synthesizer": lambda: Synthesizer(
            epochs=2, batch_size=40, eval_every=1, eval_rows=200, device="cpu"
        ).fit(frame.drop(columns="customer_id"), label="churned"),
        "Segmenter": lambda: Segmenter(k_range=(2, 3), epochs=2, cluster_epochs=1, n_init=1).fit(
            frame.drop(columns="churned")
        ),
        "PropensityModel": lambda: PropensityModel(gbm_max_iter=10).fit(
            frame.drop(columns="customer_id"), "churned"
        ),
        "BGNBD": lambda: BGNBD().fit(x, recency, T),
        "GammaGamma": lambda: GammaGamma().fit(x, m),
        "Recommender": lambda: Recommender("auto", min_support=1, random_state=0).fit(
            _interactions(), segments={"0": "a", "1": "b"}
        ),
    }
    estimator = {
        "Synthesizer": Synthesizer,
        "Segmenter": Segmenter,
        "PropensityModel": PropensityModel,
        "BGNBD": BGNBD,
        "GammaGamma": GammaGamma,
        "Recommender": Recommender,
    }[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return estimator, fits[name]()


ESTIMATORS = ["Synthesizer", "Segmenter", "PropensityModel", "BGNBD", "GammaGamma", "Recommender"]


def _assert_same(a, b, where: str) -> None:
    """Deep equality of fitted attributes (arrays, frames, sparse matrices, torch state)."""
    if isinstance(a, Nets):
        for part in ("generator", "discriminator"):
            _assert_same(getattr(a, part), getattr(b, part), f"{where}.{part}")
        _assert_same(a.cond_blocks, b.cond_blocks, f"{where}.cond_blocks")
        assert a.noise_dim == b.noise_dim, where
    elif hasattr(a, "state_dict"):  # torch module
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys(), where
        for key in sa:
            _assert_same(sa[key].cpu().numpy(), sb[key].cpu().numpy(), f"{where}.{key}")
    elif hasattr(a, "detach"):  # tensor
        _assert_same(a.cpu().numpy(), b.cpu().numpy(), where)
    elif isinstance(a, DataTransformer):
        _assert_same(a.state(), b.state(), where)
    elif isinstance(a, ConditionSampler):
        _assert_same(a.counts, b.counts, f"{where}.counts")
        assert (a.dim, a.n_columns) == (b.dim, b.n_columns), where
    elif sp.issparse(a):
        assert sp.issparse(b) and a.shape == b.shape and (a != b).nnz == 0, where
    elif isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b, check_dtype=False, obj=where)
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, np.asarray(b), err_msg=where)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and sorted(map(str, a)) == sorted(map(str, b)), where
        b_by_text = {str(k): v for k, v in b.items()}
        for key, va in a.items():
            _assert_same(va, b_by_text[str(key)], f"{where}[{key!r}]")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (va, vb) in enumerate(zip(a, b, strict=True)):
            _assert_same(va, vb, f"{where}[{i}]")
    elif isinstance(a, float) and np.isnan(a):
        assert isinstance(b, float) and np.isnan(b), where
    else:
        assert a == b or str(a) == str(b), f"{where}: {a!r} != {b!r}"


@pytest.mark.parametrize("name", ESTIMATORS)
def test_estimator_conventions_and_lossless_round_trip(name):
    estimator, fitted = _fitted(name)
    with pytest.raises(NotFittedError):
        check_is_fitted(estimator())
    check_is_fitted(fitted)
    copy = clone(fitted)
    assert copy.get_params() == fitted.get_params()
    with pytest.raises(NotFittedError):
        check_is_fitted(copy)
    loaded = estimator.from_artifact(fitted.to_artifact())
    check_is_fitted(loaded)
    assert loaded.get_params() == fitted.get_params()
    fitted_attributes = [a for a in vars(fitted) if a.endswith("_") and not a.startswith("_")]
    assert fitted_attributes
    for attribute in fitted_attributes:
        assert hasattr(loaded, attribute), f"{name}.{attribute} is lost in the round trip"
        _assert_same(getattr(fitted, attribute), getattr(loaded, attribute), attribute)
    assert loaded.to_artifact() == fitted.to_artifact()  # and it is deterministic
