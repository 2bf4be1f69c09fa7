"""The question page (``GET /ui/question?subject=&predicate=&as_of=``)."""

from __future__ import annotations

import urllib.parse

from starlette.responses import Response

from stemedb.errors import ValidationError
from stemedb.ui.core import Ui, Visit
from stemedb.ui.question import question_view
from stemedb.ui.timeparse import iso_minutes, parse_time


def question_url(subject: str, predicate: str, **extra: str) -> str:
    return "/ui/question?" + urllib.parse.urlencode(
        {"subject": subject, "predicate": predicate, **extra}
    )


async def question(ui: Ui, visit: Visit) -> Response:
    subject, predicate = visit.query("subject"), visit.query("predicate")
    if not subject or not predicate:
        raise ValidationError(
            "subject", "required", "a question is a subject and a predicate: find one in Search"
        )
    as_of = parse_time("as_of", visit.query("as_of"))
    point = visit.query("point")
    view = await ui.host.offload(
        question_view, ui.host.service, subject, predicate, as_of, ui.host.config.ui
    )
    if point.isdigit() and int(point) < len(view.timeline) and as_of is None:
        as_of = view.timeline[int(point)].at
        view = await ui.host.offload(
            question_view, ui.host.service, subject, predicate, as_of, ui.host.config.ui
        )
    query = {"subject": subject, "predicate": predicate}
    twin = "/v1/query?" + urllib.parse.urlencode({**query, "lens": "consensus"})
    skeptic_twin = "/v1/skeptic?" + urllib.parse.urlencode(query)
    if as_of is not None:
        twin += f"&as_of={as_of:.3f}"
        skeptic_twin += f"&as_of={as_of:.3f}"
    return ui.respond(
        visit,
        "question.html",
        twin,
        view=view,
        skeptic_twin=skeptic_twin,
        as_of_value=iso_minutes(as_of),
        point=point,
        question_url=question_url,
    )


__all__ = ["question", "question_url"]
