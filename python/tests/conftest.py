"""Shared fixtures for kvdex's Python tests.

``kvstore_cls`` parametrizes a test over LlamaIndex's own SimpleKVStore (the
reference: a test that fails there tests the wrong thing) and kvdex's drop-in.
"""

from __future__ import annotations

import random
import uuid
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
GOLDEN_PERSIST = DATA / "llamaindex_persist"
GOLDEN_KVSTORE = DATA / "simple_kvstore"


def _llama_simple_kvstore():
    from llama_index.core.storage.kvstore import SimpleKVStore

    return SimpleKVStore


def _kvdex_dropin():
    from kvdex.llama_index import SimpleKVStore

    return SimpleKVStore


KVSTORE_CLASSES = {
    "llamaindex": _llama_simple_kvstore,
    "kvdex": _kvdex_dropin,
}


@pytest.fixture(params=list(KVSTORE_CLASSES))
def kvstore_cls(request):
    """A LlamaIndex-compatible SimpleKVStore class: LlamaIndex's own, then kvdex's."""
    return KVSTORE_CLASSES[request.param]()


@pytest.fixture()
def simple_kvstore(kvstore_cls):
    """The fixture LlamaIndex's own storage tests use, over both classes."""
    return kvstore_cls()


@pytest.fixture()
def seeded_uuid(monkeypatch):
    """uuid.uuid4 from a fixed seed, so LlamaIndex's node ids repeat run to run."""

    def install(seed: int = 20240611) -> None:
        rng = random.Random(seed)
        monkeypatch.setattr(uuid, "uuid4", lambda: uuid.UUID(int=rng.getrandbits(128), version=4))

    return install


@pytest.fixture()
def mock_settings():
    """LlamaIndex Settings with the mock embedding and LLM (no network), restored after."""
    from llama_index.core import Settings
    from llama_index.core.embeddings import MockEmbedding
    from llama_index.core.llms import MockLLM

    saved = (Settings._embed_model, Settings._llm)
    Settings.embed_model = MockEmbedding(embed_dim=8)
    Settings.llm = MockLLM()
    yield Settings
    Settings._embed_model, Settings._llm = saved


@pytest.fixture()
def kvdex_installed():
    """kvdex.llama_index.install() for one test."""
    from kvdex import llama_index

    llama_index.install()
    yield
    llama_index.uninstall()
