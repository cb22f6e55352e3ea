"""`refdesk` commands: ask a question, check an answer."""

from __future__ import annotations

import sys

from assistant.cli.common import print_json


def render_answer_text(answer) -> str:
    lines = []
    if answer.error and answer.error != answer.answer:
        lines.append(f"! {answer.error}")
    if answer.resolved_question:
        lines.append(f"(read as: {answer.resolved_question})")
    if answer.answer:
        lines.append(answer.answer)
    if answer.invalid_markers:
        lines.append(f"({answer.invalid_markers} citation marker(s) removed: they did not point to a stored source)")
    if answer.sources:
        lines.append("")
        lines.append("Sources:")
        for s in answer.sources:
            where = "; ".join(x for x in (s.locator, s.date) if x)
            lines.append(
                f"[{s.n}] {s.title or s.record_id} — {s.source_type} {s.record_id}" + (f" ({where})" if where else "")
            )
            if s.link:
                lines.append(f"    {s.link}")
    return "\n".join(lines)


def cmd_ask(services, args) -> int:
    from assistant.answering.filters import Filter

    filters = [Filter.parse(f) for f in args.filter or []]
    answer = services.answers.ask(
        args.question, k=args.k, retrieve_only=args.retrieve_only, filters=filters, history=args.after or []
    )
    handoff = services.handoffs.create(answer, contact=args.contact or "") if args.handoff else None
    if args.json:
        out = answer.public_dict()
        if handoff:
            out["handoff_id"] = handoff.id
        print_json(out)
    else:
        print(render_answer_text(answer))
        if handoff:
            print(f"\nHanded off to a librarian as #{handoff.id}.")
    return 0


def cmd_verify(services, args) -> int:
    """Checks an answer written elsewhere (another chatbot, a colleague) against the store."""
    from pathlib import Path

    from assistant.core.types import Answer

    if args.answer_file:
        draft = sys.stdin.read() if args.answer_file == "-" else Path(args.answer_file).read_text(encoding="utf-8")
    else:
        draft = args.answer
    answer = Answer(question=args.question)
    if args.sources:
        answer.sources = services.retriever.sources_by_id([c.strip() for c in args.sources.split(",") if c.strip()])
    else:
        answer.sources = services.retriever.retrieve(
            args.question, args.k or services.settings.retrieval.top_k, answer.timings
        )
    services.answers.finish(answer, draft)
    if args.json:
        print_json(answer.public_dict())
    else:
        for s in answer.sentences:
            mark = "OK " if s.status == "supported" else "NO "
            print(f"{mark} {s.text}")
            for reason in s.reasons:
                print(f"      - {reason}")
        supported = sum(s.status == "supported" for s in answer.sentences)
        print(f"\n{supported} of {len(answer.sentences)} sentences supported by the cited sources.")
        print(render_answer_text(answer.model_copy(update={"answer": "", "error": ""})))
    return 0


def register(sub) -> None:
    s = sub.add_parser("ask", help="ask a question")
    s.add_argument("question")
    s.add_argument("--json", action="store_true")
    s.add_argument("--retrieve-only", action="store_true", help="skip the LLM, show the sources")
    s.add_argument("--k", type=int, help="number of sources to retrieve")
    s.add_argument(
        "--filter",
        action="append",
        metavar="KEY<OP>VALUE",
        help="only sources whose metadata match, e.g. year<1900, format=book, language=English, "
        "source_type=marc (repeatable: all must hold)",
    )
    s.add_argument("--handoff", action="store_true", help="also put the question in the librarians' hand-off queue")
    s.add_argument("--contact", help="with --handoff: how the librarian can reach the asker (optional)")
    s.add_argument(
        "--after",
        action="append",
        metavar="EARLIER_QUESTION",
        help="an earlier question of the same conversation (repeatable, oldest first): "
        'refdesk ask "Who published it?" --after "Do you have Kavalier and Clay?"',
    )
    s.set_defaults(func=cmd_ask)

    s = sub.add_parser("verify", help="check an answer with [n] markers against the store")
    s.add_argument("--question", required=True)
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--answer", help="the answer text")
    g.add_argument("--answer-file", help="file with the answer text, - for stdin")
    s.add_argument("--sources", help="comma-separated chunk ids to number [1].. instead of retrieving")
    s.add_argument("--k", type=int)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_verify)
