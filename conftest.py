"""Repository-wide pytest setup: nbval collects the book's MyST `.md` notebooks (see the plugin's docstring);
tests use a tuning cache of their own (`mlc_lab.tuning.cache`), never the user's."""

import os

import pytest

pytest_plugins = ["mlc_lab.grading.pytest_plugin"]


@pytest.fixture(autouse=True, scope="session")
def _private_tuning_cache(tmp_path_factory):
    """What a test compiles must not depend on (or add to) what this user tuned or checked before."""
    previous = os.environ.get("MLC_LAB_CACHE_DIR")
    os.environ["MLC_LAB_CACHE_DIR"] = str(tmp_path_factory.mktemp("mlc_lab_cache"))
    yield
    if previous is None:
        os.environ.pop("MLC_LAB_CACHE_DIR", None)
    else:
        os.environ["MLC_LAB_CACHE_DIR"] = previous
