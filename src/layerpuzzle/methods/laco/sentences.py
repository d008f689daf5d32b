"""LaCo's calibration sentences D (LaCo §3.1: "10 random sentences from Wikipedia"; Tables 12, 17, 18).

``sample_sentences(source, n, seed, mirror)``: the first ``n`` sentences after a seeded permutation
(:func:`layerpuzzle.data.calibration.select_rows`) of one corpus, one sentence per line:

* ``wikipedia`` — 1,000 sentence-segmented English Wikipedia lines (the data mirror's
  ``wikipedia_sentences/en_wiki_1Kline_sample.txt``);
* ``book`` — the lines (≥ 40 characters) of a whole PG19 train book (``pg19/train_10006.txt``), standing
  in for LaCo's BookCorpus (Table 17), of which no copy is available.

The default ``notebook`` source is not sampled: it is the LaCo notebook's 5 fixed sentences
(``methods.laco.sentences``).
"""

from __future__ import annotations

from pathlib import Path

from ...data.calibration import select_rows

SOURCES = {"wikipedia": "wikipedia_sentences/en_wiki_1Kline_sample.txt", "book": "pg19/train_10006.txt"}
SOURCE_NOTES = {"wikipedia": "English Wikipedia sentences (1,000-line sample)",
                "book": "PG19 train book 10006 lines (stand-in for BookCorpus)"}
MIN_BOOK_CHARS = 40


def sentence_pool(source: str, mirror: str | Path | None) -> list[str]:
    """Every candidate sentence of ``source`` (file order)."""
    if source not in SOURCES:
        raise ValueError(f"LaCo variant key `sentence_source`: value {source!r} cannot be sampled; "
                         f"allowed: {', '.join(SOURCES)}")
    if not mirror:
        raise ValueError(f"LaCo sentence_source {source!r} reads the data mirror (data.mirror or "
                         f"$LAYERPUZZLE_DATA_MIRROR); none is configured")
    path = Path(mirror) / SOURCES[source]
    if not path.is_file():
        raise FileNotFoundError(f"data mirror is missing {source} sentences: expected the file {str(path)!r}")
    lines = [s.strip() for s in path.read_text(encoding="utf-8").splitlines()]
    floor = MIN_BOOK_CHARS if source == "book" else 1
    return [s for s in lines if len(s) >= floor]


def sample_sentences(source: str, n: int, seed: int, mirror: str | Path | None) -> list[str]:
    """``n`` sentences of ``source`` drawn with ``seed`` (the first ``n`` of a seeded permutation)."""
    pool = sentence_pool(source, mirror)
    if not 1 <= n <= len(pool):
        raise ValueError(f"LaCo variant key `sentence_count`: value {n} is not allowed; allowed: 1..{len(pool)} "
                         f"for source {source!r}")
    return select_rows(pool, n, seed)
