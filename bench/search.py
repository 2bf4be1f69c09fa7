"""Search and discovery: latency at scale, and what the index costs ingest.

1. **Search at scale.** Loads ``--assertions`` (default 1,000,000) assertions into a
   fresh ``SqliteStore`` through its apply path (``store.apply``, batches of 1,000, the
   writer's transaction with the index rows; unsigned: the store does not verify, the
   engine does), stopping at ``--load-seconds`` (default 300) if that comes first.
   Corpus: 20 subject domains, one subject per 20 assertions, ~5 of 200 predicates per
   subject, 60 % text values of 4-10 words from a 5,000-word Zipf vocabulary (half of
   them repeating an earlier value of the key), 1 % citing one of N/1,000 registered
   sources. Then, in process, ``query.search`` (the function the routes and MCP call):
   p50/p99 of ``--queries`` searches of each kind (one rare word, one common word, two
   words, a subject, a misspelt subject that finds nothing and answers suggestions, an
   FTS prefix query), of ``subjects(prefix)`` and ``predicates(subject)``, and of
   "did you mean" for a misspelt key.
2. **Ingest with the index against without**, alternated in one run (A B A B, ``--pairs``
   pairs): (a) the store's apply path alone on the corpus above, µs per assertion; (b)
   the whole durable engine path as ``bench/ingest.py`` runs it (validation, Ed25519
   verification, group commit, WAL + fdatasync, apply), 4 threads x ``write_many(256)``
   of ``--ingest-records`` pre-signed assertions from ``bench/_common.py`` — each one a
   new (subject, predicate) with a new text value: the index's worst case. "Without" is
   the same code with the index's row writes skipped (``SearchRows`` and
   ``index_source`` made no-ops), so the difference is the index alone.

Prints one JSON document with the machine figure. Benchmarks are not tests.

    uv run --locked python bench/search.py
    uv run --locked python bench/search.py --assertions 200000 --queries 100 --pairs 1
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import latency_summary_ms, presign

from stemedb.engine import Engine, EngineSettings
from stemedb.model.kinds import Entry, RecordKind
from stemedb.model.records import Assertion, ObjectValue, Signature, Source
from stemedb.query import search as search_api
from stemedb.store.sqlite import SqliteStore, search_rows
from stemedb.store.sqlite import apply as sqlite_apply

DOMAINS = [f"d{i:02}" for i in range(20)]
SIGNATURES = (Signature("ab" * 32, "cd" * 64, 1),)
BATCH = 1000


def machine_speed() -> dict[str, float]:
    """The machine figure of ``bench/http_load.py`` (``bench/http.py`` before its rename,
    loaded with ``bench/`` off ``sys.path`` so that it does not shadow the stdlib's http)."""
    here = Path(__file__).resolve().parent
    for name in ("http_load.py", "http.py"):
        path = here / name
        if not path.exists():
            continue
        saved = sys.path[:]
        sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
        try:
            spec = importlib.util.spec_from_file_location("bench_http_load", path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module  # its process pool pickles its functions
            spec.loader.exec_module(module)
        finally:
            sys.path[:] = saved
        result: dict[str, float] = module.machine_speed()
        return result
    return {}


class Corpus:
    """The deterministic corpus of part 1 (and of the store-level ingest of part 2)."""

    def __init__(self, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        syllables = ["ba", "ce", "di", "fo", "gu", "la", "me", "ni", "po", "ru", "sa", "te"]
        self.words = [
            "".join(self.rng.choice(syllables) for _ in range(self.rng.randint(2, 4))) + str(i)
            for i in range(5000)
        ]
        self.weights = [1.0 / (rank + 1) for rank in range(len(self.words))]
        self.predicates = [
            f"{self.words[self.rng.randrange(300)]}_{self.words[self.rng.randrange(300)]}"
            for _ in range(200)
        ]
        self.values: dict[tuple[str, str], list[str]] = {}
        self.sources: list[str] = []

    def subject(self, index: int) -> str:
        return f"{DOMAINS[index % len(DOMAINS)]}/{self.words[index % 4999]}-{index}"

    def text(self) -> str:
        return " ".join(self.rng.choices(self.words, self.weights, k=self.rng.randint(4, 10)))

    def entries(self, start_lsn: int, count: int, subjects: int) -> list[Entry]:
        rng = self.rng
        out: list[Entry] = []
        for lsn in range(start_lsn, start_lsn + count):
            if rng.random() < 0.001 or not self.sources:
                source_hash = f"{lsn:064x}"
                record: Any = Source(
                    source_hash=source_hash,
                    uri=f"https://example.org/{rng.choice(self.words)}/{lsn}",
                    timestamp=1,
                    signatures=SIGNATURES,
                    title=self.text(),
                )
                self.sources.append(source_hash)
                out.append(Entry(lsn, RecordKind.SOURCE, f"{lsn:064x}", record, 1.0))
                continue
            index = rng.randrange(subjects)
            subject = self.subject(index)
            predicate = self.predicates[(index * 7 + rng.randrange(5)) % len(self.predicates)]
            if rng.random() < 0.6:
                seen = self.values.setdefault((subject, predicate), [])
                text = rng.choice(seen) if seen and rng.random() < 0.5 else self.text()
                if len(seen) < 4:
                    seen.append(text)
                value = ObjectValue("text", text)
            else:
                value = ObjectValue("number", float(rng.randrange(1000)))
            cites = rng.choice(self.sources) if rng.random() < 0.01 else None
            record = Assertion(
                subject=subject,
                predicate=predicate,
                object=value,
                confidence=0.5 + rng.random() / 2,
                timestamp=1,
                signatures=SIGNATURES,
                source_hash=cites,
            )
            out.append(Entry(lsn, RecordKind.ASSERTION, f"{lsn:064x}", record, 1.0))
        return out


def load(store: SqliteStore, corpus: Corpus, total: int, max_seconds: float) -> dict[str, Any]:
    subjects = max(1, total // 20)
    started = time.perf_counter()
    apply_seconds = 0.0
    lsn = 1
    while lsn <= total and time.perf_counter() - started < max_seconds:
        batch = corpus.entries(lsn, min(BATCH, total - lsn + 1), subjects)
        t0 = time.perf_counter()
        store.apply(batch)
        apply_seconds += time.perf_counter() - t0
        lsn += len(batch)
    loaded = lsn - 1
    return {
        "assertions_wanted": total,
        "records_loaded": loaded,
        "assertions": store.assertion_count(),
        "load_seconds": round(time.perf_counter() - started, 1),
        "apply_us_per_record": round(apply_seconds / max(1, loaded) * 1e6, 1),
        "store_bytes": store.disk_bytes(),
        "subjects": subjects,
    }


def timed(fn: Callable[[], object], count: int) -> dict[str, float]:
    seconds = []
    for _ in range(count):
        t0 = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - t0)
    return latency_summary_ms(seconds)


def query_latencies(store: SqliteStore, corpus: Corpus, count: int) -> dict[str, Any]:
    rng = random.Random(11)
    subjects = max(1, store.assertion_count() // 20)
    rare = corpus.words[2000:4999]
    common = corpus.words[:20]

    def misspelt(text: str) -> str:
        cut = rng.randrange(len(text) - 1)
        return text[:cut] + text[cut + 1 :]

    kinds: dict[str, Callable[[], object]] = {
        "rare_word": lambda: search_api.search(store, rng.choice(rare)),
        "common_word": lambda: search_api.search(store, rng.choice(common)),
        "two_words": lambda: search_api.search(
            store, f"{rng.choice(common)} {rng.choice(corpus.words[:500])}"
        ),
        "subject": lambda: search_api.search(store, corpus.subject(rng.randrange(subjects))),
        "misspelt_subject_suggestions": lambda: search_api.search(
            store, misspelt(corpus.subject(rng.randrange(subjects))) + "q"
        ),
        "fts_prefix": lambda: search_api.search(
            store, rng.choice(corpus.words[:500])[:4] + "*", mode="fts"
        ),
        "subjects_prefix": lambda: search_api.subjects(store, rng.choice(DOMAINS) + "/"),
        "predicates_of_subject": lambda: search_api.predicates(
            store, corpus.subject(rng.randrange(subjects))
        ),
        "did_you_mean_query": lambda: search_api.suggestions(
            store, misspelt(corpus.subject(rng.randrange(subjects))), rng.choice(corpus.predicates)
        ),
    }
    return {name: timed(fn, count) for name, fn in kinds.items()}


@contextlib.contextmanager
def index_writes(enabled: bool) -> Iterator[None]:
    """The index's row writes as they are, or skipped (the "without" runs)."""
    if enabled:
        yield
        return
    targets: list[tuple[object, str]] = [
        (search_rows.SearchRows, "add"),
        (search_rows.SearchRows, "cite"),
        (search_rows.SearchRows, "flush"),
        (sqlite_apply, "index_source"),
    ]
    saved = [getattr(owner, name) for owner, name in targets]

    def nothing(*_: object) -> None:
        return None

    for owner, name in targets:
        setattr(owner, name, nothing)
    try:
        yield
    finally:
        for (owner, name), value in zip(targets, saved, strict=True):
            setattr(owner, name, value)


def store_apply_run(records: int, with_index: bool) -> float:
    """µs per record of the store's apply path on a fresh store."""
    corpus = Corpus(seed=3)
    subjects = max(1, records // 20)
    batches = [corpus.entries(1 + i, BATCH, subjects) for i in range(0, records, BATCH)]
    with tempfile.TemporaryDirectory(prefix="stemedb-bench-search-") as tmp:
        store = SqliteStore(Path(tmp))
        try:
            with index_writes(with_index):
                t0 = time.perf_counter()
                for batch in batches:
                    store.apply(batch)
                seconds = time.perf_counter() - t0
        finally:
            store.close()
    return seconds / records * 1e6


def engine_run(records: list[Assertion], with_index: bool) -> dict[str, float]:
    """Durable ingest as ``bench/ingest.py --clients 4 --batch 256`` runs it."""
    clients, chunk = 4, 256
    tmp = tempfile.mkdtemp(prefix="stemedb-bench-search-ingest-")
    try:
        with index_writes(with_index):
            engine = Engine.embedded(Path(tmp), EngineSettings(fsync=True))
            try:
                start = threading.Barrier(clients + 1)

                def client(index: int) -> None:
                    mine = records[index::clients]
                    start.wait()
                    for i in range(0, len(mine), chunk):
                        engine.write_many(mine[i : i + chunk])

                threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
                for t in threads:
                    t.start()
                cpu0 = time.process_time()
                start.wait()
                t0 = time.perf_counter()
                for t in threads:
                    t.join()
                elapsed = time.perf_counter() - t0
                cpu = time.process_time() - cpu0
                indexed = engine.store.search("entity", fts=False, bound=None, offset=0, limit=1)
            finally:
                engine.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    assert bool(indexed[0]) == with_index  # the "without" runs really skipped the index
    return {
        "throughput_per_s": round(len(records) / elapsed, 1),
        "cpu_us_per_record": round(cpu / len(records) * 1e6, 1),
    }


def alternated(pairs: int, run: Callable[[bool], Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {"with_index": [], "without_index": []}
    for _ in range(pairs):
        for with_index in (True, False):
            out["with_index" if with_index else "without_index"].append(run(with_index))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assertions", type=int, default=1_000_000)
    parser.add_argument("--load-seconds", type=float, default=300.0)
    parser.add_argument("--queries", type=int, default=300, help="timed calls per kind")
    parser.add_argument("--pairs", type=int, default=2, help="A B pairs of each ingest run")
    parser.add_argument("--store-records", type=int, default=50_000)
    parser.add_argument("--ingest-records", type=int, default=20_000)
    parser.add_argument("--skip-scale", action="store_true", help="only part 2")
    args = parser.parse_args(argv)

    result: dict[str, Any] = {"bench": "search", "cpus": os.cpu_count()}
    result["machine"] = machine_speed()
    if not args.skip_scale:
        with tempfile.TemporaryDirectory(prefix="stemedb-bench-search-scale-") as tmp:
            store = SqliteStore(Path(tmp))
            try:
                corpus = Corpus()
                result["scale"] = load(store, corpus, args.assertions, args.load_seconds)
                result["latency_ms"] = query_latencies(store, corpus, args.queries)
            finally:
                store.close()
    store_runs = alternated(args.pairs, lambda on: store_apply_run(args.store_records, on))
    with_us = sum(store_runs["with_index"]) / len(store_runs["with_index"])
    without_us = sum(store_runs["without_index"]) / len(store_runs["without_index"])
    result["store_apply_us_per_record"] = {
        "records": args.store_records,
        "with_index": [round(x, 1) for x in store_runs["with_index"]],
        "without_index": [round(x, 1) for x in store_runs["without_index"]],
        "index_us_per_record": round(with_us - without_us, 1),
    }
    signed = presign(args.ingest_records, tag="-search")
    engine_runs = alternated(args.pairs, lambda on: engine_run(signed, on))
    with_rate = sum(r["throughput_per_s"] for r in engine_runs["with_index"])
    without_rate = sum(r["throughput_per_s"] for r in engine_runs["without_index"])
    result["engine_ingest"] = {
        "records": args.ingest_records,
        "clients": "4 threads x write_many(256), durable",
        **engine_runs,
        "with_over_without": round(with_rate / without_rate, 3),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
