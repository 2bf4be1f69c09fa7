"""``stemedb demo`` without ``--url``: the demo data set written into the configured
data directory, and its lens table (the server install)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from stemedb.cli.common import USAGE_EXIT_CODE, fail
from stemedb.cli.demo import PREDICATE, SUBJECT
from stemedb.cli.output import line, table
from stemedb.config import load_config
from stemedb.errors import StemeError
from stemedb.lens import LENS_NAMES
from stemedb.model.kinds import AnyRecord
from stemedb.query.params import QueryParams
from stemedb.query.service import QueryService
from stemedb.runtime.topology import open_engine_for_command


def run_local_demo(config: Path | None, records: Sequence[AnyRecord]) -> None:
    try:
        cfg = load_config(config)
    except StemeError as exc:
        raise fail(exc, USAGE_EXIT_CODE) from None
    try:
        with open_engine_for_command(cfg) as engine:
            results = engine.write_many(records)
            errors = [r for r in results if isinstance(r, StemeError)]
            for error in errors:
                sys.stderr.write(f"{error.type_name}: {error.message}\n")
            service = QueryService.from_config(engine, cfg)
            try:
                rows = []
                for lens in LENS_NAMES:
                    r = service.query(QueryParams(subject=SUBJECT, predicate=PREDICATE, lens=lens))
                    assert r.resolution is not None
                    w = r.resolution.winner
                    rows.append(
                        [
                            lens,
                            "-" if w is None else f"{w.object.value} ({w.source_class})",
                            f"{r.resolution.resolution_confidence:.3f}",
                            f"{r.resolution.conflict_score:.3f}",
                            r.resolution.status or "",
                        ]
                    )
                columns = ("lens", "winner", "resolution_confidence", "conflict_score", "status")
                table(f"{SUBJECT} / {PREDICATE}: one question, seven lenses", columns, rows)
                warnings = service.query(QueryParams(subject=SUBJECT, predicate=PREDICATE))
                for warning in warnings.source_warnings:
                    line(f"excluded {warning.assertion_id}: {warning.kind} ({warning.reason})")
                line(f"{len(records) - len(errors)} records in {cfg.data_dir}")
            finally:
                service.close()
    except StemeError as exc:
        raise fail(exc) from None
