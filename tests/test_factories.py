"""Every model has a factory, and every factory builds a row the database accepts."""

import pytest

from app.extensions import db
from app.models import Base

from . import factories

FACTORIES = [
    getattr(factories, name)
    for name in dir(factories)
    if name.endswith("Factory") and not getattr(factories, name)._meta.abstract
]


def test_every_model_has_a_factory():
    covered = {f._meta.model for f in FACTORIES}
    models = {m.class_ for m in Base.registry.mappers}
    assert models <= covered, models - covered


@pytest.mark.parametrize("factory", FACTORIES, ids=lambda f: f.__name__)
def test_each_factory_builds_a_valid_row(app_ctx, factory):
    obj = factory()
    db.session.commit()
    assert db.session.get(type(obj), db.inspect(obj).identity) is not None
