"""A served world: catalog `m.s`, feature table `m.s.users` published online, xgboost model
versions of `m.s.churn` logged with MLflow (version 1 with a feature spec, version 2 without),
and a live `cairn serve` app with a token for the admin."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.server import make_app
from catalog.client import Cairn, Metastore
from tests.serving.helpers import feature_spec, log_model, publish_features, register


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Logged once per session: sources of a model with a feature spec, one without, and a shifted one."""
    tmp = tmp_path_factory.mktemp("mlflow")
    return {
        "spec": log_model(tmp, spec=feature_spec("m.s.users")),
        "plain": log_model(tmp),
        "shifted": log_model(tmp, shift=100.0),
    }


@pytest.fixture
def world(admin: Cairn, models: dict[str, str]) -> dict[str, Any]:
    admin.catalogs.create_catalog("m")
    admin.schemas.create_schema("m.s")
    publish_features(admin, "m.s.users")
    versions = {k: register(admin, "m.s.churn", src) for k, src in models.items()}
    return {"versions": versions, "token": admin.tokens.create_token()[0]}


@pytest.fixture
def server(metastore: Metastore, live) -> Iterator[str]:  # type: ignore[no-untyped-def]
    with live(make_app(metastore)) as url:
        yield url


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def entities(*pairs: tuple[str, int], scale_to_zero: bool = False) -> list[dict[str, Any]]:
    return [{"name": n, "entity_name": "m.s.churn", "entity_version": v, "scale_to_zero_enabled": scale_to_zero} for n, v in pairs]


__all__ = ["Path", "auth", "entities"]
