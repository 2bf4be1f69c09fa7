"""authority lens: confidence * trust * tier weight * decay (worked example in lenses.md)."""

from __future__ import annotations

import pytest
from lens_factories import NOW, make_claim

from stemedb.lens import LensConfig, resolve

CONFIG = LensConfig.default()
CLAIMS = [
    make_claim("a", "approved", 0.8, 10, "regulatory", ("A",), 1, trust=0.5),
    make_claim("b", "approved", 0.9, 730, "clinical", ("B",), 2, trust=0.9),
    make_claim("c", "withdrawn", 0.9, 0, "expert", ("C",), 3, trust=1.0, timestamp=NOW + 3600),
]


def test_worked_example_authority_weights() -> None:
    result = resolve("authority", CLAIMS, now=NOW, config=CONFIG)
    assert (result.winner, result.winner_value_key) == ("a", "approved")
    assert [r.id for r in result.ranked] == ["a", "c", "b"]
    assert [r.weight for r in result.ranked] == pytest.approx([0.4, 0.36, 0.324])
    assert [(g.value_key, g.claim_ids, g.best_tier) for g in result.groups] == [
        ("approved", ("a", "b"), 0),
        ("withdrawn", ("c",), 3),
    ]
    assert [g.weight for g in result.groups] == pytest.approx([0.4, 0.36])
    assert [g.share for g in result.groups] == pytest.approx([0.4 / 0.76, 0.36 / 0.76])
    assert result.conflict_score == pytest.approx(0.998001, abs=1e-6)
    assert result.resolution_confidence == pytest.approx(0.421053, abs=1e-6)


def test_trusted_signer_outweighs_untrusted_one() -> None:
    claims = [
        make_claim("trusted", "x", 0.6, 0, "expert", ("A",), 1, trust=0.9),
        make_claim("distrusted", "y", 0.9, 0, "expert", ("B",), 2, trust=0.2),
    ]
    assert resolve("authority", claims, now=NOW, config=CONFIG).winner == "trusted"


def test_zero_trust_everywhere_falls_back_to_uniform_shares() -> None:
    claims = [
        make_claim("a", "x", 0.6, 0, "expert", ("A",), 1, trust=0.0),
        make_claim("b", "y", 0.9, 0, "expert", ("B",), 2, trust=0.0),
    ]
    result = resolve("authority", claims, now=NOW, config=CONFIG)
    assert result.winner == "b"  # all weights 0: later lsn breaks the tie
    assert [g.share for g in result.groups] == [0.5, 0.5]
    assert result.conflict_score == 1.0
