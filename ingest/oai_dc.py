"""OAI-PMH harvests in Dublin Core (oai_dc): one catalogue record per OAI <record>, streamed.

Catalogues often expose records this way instead of MARCXML (../shared/data holds one such
harvest filed with the MARC samples).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from assistant.core.types import Filters, Provenance, RecordField, SkippedRecord, SourceRecord, fielded_text
from ingest.registry import ReaderError

OAI = "{http://www.openarchives.org/OAI/2.0/}"
DC = "{http://purl.org/dc/elements/1.1/}"
LABELS = [
    ("title", "Title"),
    ("creator", "Creator"),
    ("contributor", "Contributor"),
    ("date", "Date"),
    ("publisher", "Publisher"),
    ("type", "Type"),
    ("format", "Format"),
    ("subject", "Subject"),
    ("coverage", "Coverage"),
    ("description", "Description"),
    ("language", "Language"),
    ("relation", "Relation"),
    ("rights", "Rights"),
    ("identifier", "Identifier"),
    ("source", "Source"),
]


def iter_records(path: str | Path, link_template: str = "") -> Iterator[SourceRecord | SkippedRecord]:
    from lxml import etree

    path = Path(path)
    position = 0
    try:
        for _, el in etree.iterparse(
            str(path),
            events=("end",),
            tag=f"{OAI}record",
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            huge_tree=True,
        ):
            position += 1
            identifier = (el.findtext(f"{OAI}header/{OAI}identifier") or "").strip()
            if el.find(f"{OAI}header[@status='deleted']") is not None:
                el.clear()
                continue  # OAI says the record was withdrawn
            values: dict[str, list[str]] = {}
            for child in el.iter(f"{DC}*"):
                text = re.sub(r"\s+", " ", "".join(child.itertext())).strip()
                if text:
                    values.setdefault(etree.QName(child).localname, []).append(text)
            el.clear()
            if not identifier or not values:
                yield SkippedRecord(
                    path=str(path), record=f"record {position}", reason="OAI record without identifier or Dublin Core"
                )
                continue
            title = values.get("title", ["Untitled"])[0]
            urls = [v for v in values.get("identifier", []) if v.startswith(("http://", "https://"))]
            link = (
                link_template.format(id=identifier, record_id=identifier)
                if link_template
                else urls[0]
                if urls
                else f"{path.resolve().as_uri()}#{identifier}"
            )
            date = values.get("date", [""])[0]
            year = re.search(r"\b(1[0-9]{3}|20[0-9]{2})\b", date)
            fields: list[RecordField] = [(label, v) for key, label in LABELS for v in values.get(key, [])]
            filters: Filters = {"format": values.get("type", [""])[0].lower()}
            if year:
                filters["year"] = int(year.group(1))
            yield SourceRecord(
                provenance=Provenance(
                    source_type="dc",
                    record_id=identifier,
                    title=title,
                    locator=f"{title} — {identifier}",
                    link=link,
                    date=date,
                    source_file=str(path.resolve()),
                ),
                text=fielded_text(fields),
                filters=filters,
                fields=fields,
            )
    except etree.XMLSyntaxError as exc:
        raise ReaderError(
            path, f"not well-formed XML at line {exc.lineno}: {exc.msg}", record=f"after record {position}"
        ) from exc
