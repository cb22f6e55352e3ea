"""EAD 2002 and EAD3 finding aids, streamed with lxml.iterparse (bounded memory on 12k-component guides).

One record for the collection (title, dates, extent, creator, abstract, notes, controlled access)
and one per component (c, c01..c12) carrying its container locator ("Box 3, Folder 12"), its
series path ("Series I: Correspondence › 1950-1955"), the collection title, scope note and
digital-object links. DTDs and external entities are never fetched.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from assistant.core.types import Filters, Provenance, RecordField, SkippedRecord, SourceRecord, fielded_text
from ingest.registry import ReaderError

COMPONENT = re.compile(r"^c(0[1-9]|1[0-2])?$")
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
COLLECTION_NOTES = [
    ("abstract", "Abstract"),
    ("bioghist", "Biographical / historical note"),
    ("scopecontent", "Scope and content"),
    ("arrangement", "Arrangement"),
    ("accessrestrict", "Access restrictions"),
    ("userestrict", "Use restrictions"),
    ("prefercite", "Preferred citation"),
    ("acqinfo", "Acquisition"),
    ("processinfo", "Processing information"),
]
# A component's own notes, by element name, as labelled fields.
COMPONENT_NOTES = {
    "scopecontent": "Scope",
    "bioghist": "Biographical / historical note",
    "odd": "Note",
    "note": "Note",
    "physdesc": "Physical description",
    "accessrestrict": "Access restrictions",
}
CONTROLLED = {
    "subject": "Subject",
    "persname": "Name",
    "corpname": "Name",
    "famname": "Name",
    "geogname": "Place",
    "genreform": "Genre",
    "occupation": "Occupation",
    "function": "Function",
    "title": "Title",
}


def _local(el) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def _text(el) -> str:
    if el is None:
        return ""
    return re.sub(r"\s+", " ", " ".join(t for t in el.itertext())).strip()


def _child(el, name: str):
    for c in el:
        if _local(c) == name:
            return c
    return None


def _year(date: str) -> int | None:
    match = re.search(r"\b(1[0-9]{3}|20[0-9]{2})\b", date)
    return int(match.group(1)) if match else None


def _did_date(did) -> str:
    parts = [_text(d) for d in did if _local(d) in ("unitdate", "unitdatestructured")]
    return "; ".join(p for p in parts if p)


def _containers(did) -> str:
    out = []
    for c in did:
        if _local(c) != "container":
            continue
        kind = (c.get("type") or c.get("localtype") or "").strip()
        value = _text(c)
        if not value:
            continue
        label = kind.replace("_", " ").title() if kind else "Container"
        if label.lower() in ("box", "folder", "reel", "volume", "item", "carton", "map-case", "oversize"):
            label = label.title()
        out.append(f"{label} {value}")
    return ", ".join(out)


def _daos(el) -> list[str]:
    links = []
    for d in el.iter():
        if _local(d) in ("dao", "daoloc"):
            href = d.get(XLINK_HREF) or d.get("href")
            if href and href not in links:
                links.append(href)
    return links


@dataclass
class Frame:
    element: etree._Element
    path_id: str
    title: str = ""
    date: str = ""
    unitid: str = ""
    containers: str = ""
    has_did: bool = False
    notes: list[RecordField] = field(default_factory=list)
    child_count: int = 0


class _Collection:
    def __init__(self, path: Path):
        self.path = path
        self.eadid = ""
        self.title = ""
        self.unitid = ""
        self.date = ""
        self.fields: list[RecordField] = []
        self.emitted = False
        self.names: list[str] = []  # origination, controlaccess persname/corpname/famname: search fields
        self.subjects: list[str] = []  # controlaccess subject/geogname/genreform/occupation/function


def iter_records(path: str | Path, link_template: str = "") -> Iterator[SourceRecord | SkippedRecord]:
    path = Path(path)
    coll = _Collection(path)
    stack: list[Frame] = []
    top_count = 0
    in_dsc = False
    try:
        parser = etree.iterparse(
            str(path),
            events=("start", "end"),
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            huge_tree=True,
            remove_comments=True,
        )
        for event, el in parser:
            name = _local(el)
            if event == "start":
                if name == "dsc":
                    in_dsc = True
                    if not coll.emitted:
                        yield _collection_record(coll, link_template)
                elif COMPONENT.match(name) and in_dsc:
                    if stack:
                        stack[-1].child_count += 1
                        path_id = f"{stack[-1].path_id}.{stack[-1].child_count}"
                    else:
                        top_count += 1
                        path_id = f"c{top_count}"
                    stack.append(Frame(el, path_id))
                continue
            # end events
            parent = el.getparent()
            parent_name = _local(parent) if parent is not None else ""
            if name == "eadid" or (name == "recordid" and parent_name == "control"):
                coll.eadid = _text(el)
            elif name == "titleproper" and not coll.title and el.get("type") != "filing":
                coll.title = _text(el)
            elif name == "did" and parent_name == "archdesc":
                coll.title = _text(_child(el, "unittitle")).rstrip(" ,;:") or coll.title
                coll.unitid = _text(_child(el, "unitid"))
                coll.date = _did_date(el)
                _collection_did_fields(coll, el)
            elif parent_name == "archdesc" and name in dict(COLLECTION_NOTES):
                text = _note_text(el)
                if text:
                    coll.fields.append((dict(COLLECTION_NOTES)[name], text))
            elif name == "controlaccess" and parent_name == "archdesc":
                for term in el.iter():
                    label = CONTROLLED.get(_local(term))
                    if label and _text(term):
                        coll.fields.append((label, _text(term)))
                        (coll.names if label == "Name" else coll.subjects).append(_text(term))
            elif name == "did" and stack and parent is stack[-1].element:
                frame = stack[-1]
                frame.has_did = True
                frame.title = _text(_child(el, "unittitle")).rstrip(" ,;:")
                frame.date = _did_date(el)
                frame.unitid = _text(_child(el, "unitid"))
                frame.containers = _containers(el)
            elif stack and parent is stack[-1].element and name in COMPONENT_NOTES:
                text = _note_text(el)
                if text:
                    stack[-1].notes.append((COMPONENT_NOTES[name], text))
            elif COMPONENT.match(name) and stack and stack[-1].element is el:
                frame = stack.pop()
                daos = _daos(el)
                if frame.has_did:
                    yield _component_record(coll, frame, stack, el, daos, link_template)
                # Bounded memory: drop the finished component and anything before it.
                el.clear()
                while el.getprevious() is not None:
                    del el.getparent()[0]
            elif name == "archdesc" and not coll.emitted:
                yield _collection_record(coll, link_template)
    except etree.XMLSyntaxError as exc:
        raise ReaderError(
            path,
            f"not well-formed XML at line {exc.lineno}: {exc.msg}",
            record=f"after {top_count} top-level components",
        ) from exc
    except OSError as exc:
        raise ReaderError(path, f"cannot read: {exc}") from exc
    if not coll.emitted and not coll.title:
        raise ReaderError(path, "no <archdesc>: not an EAD finding aid")


def _note_text(el) -> str:
    parts = [_text(c) for c in el if _local(c) not in ("head",)]
    return re.sub(r"\s+", " ", " ".join(p for p in parts if p)).strip() or _text(el)


# The collection's <did> children a reference archivist reads out, by element name.
COLLECTION_DID_FIELDS = {
    "origination": "Creator",
    "physdesc": "Extent",
    "physdescstructured": "Extent",
    "abstract": "Abstract",
    "repository": "Repository",
    "langmaterial": "Language",
    "physloc": "Location",
}


def _collection_did_fields(coll: _Collection, did) -> None:
    fields: list[RecordField] = [("Collection", coll.title)]
    if coll.unitid:
        fields.append(("Collection number", coll.unitid))
    if coll.date:
        fields.append(("Dates", coll.date))
    for c in did:
        label = COLLECTION_DID_FIELDS.get(_local(c))
        if label and _text(c):
            fields.append((label, _text(c)))
            if label == "Creator":
                coll.names.append(_text(c))
    coll.fields = fields + coll.fields


def _link(template: str, coll: _Collection, component_id: str, daos: list[str]) -> str:
    base_id = coll.eadid or coll.unitid or coll.path.stem
    if template:
        return template.format(eadid=base_id, component_id=component_id, id=component_id)
    if daos:
        return daos[0]
    return f"{coll.path.resolve().as_uri()}#{component_id}"


def _collection_record(coll: _Collection, template: str) -> SourceRecord:
    coll.emitted = True
    record_id = coll.eadid or coll.unitid or coll.path.stem
    filters: Filters = {"format": "collection", "collection": coll.title}
    if (year := _year(coll.date)) is not None:
        filters["year"] = year
    return SourceRecord(
        provenance=Provenance(
            source_type="ead",
            record_id=record_id,
            title=coll.title or coll.path.stem,
            locator=f"finding aid {coll.unitid or record_id}",
            link=_link(template, coll, "", []),
            date=coll.date,
            source_file=str(coll.path.resolve()),
        ),
        text=fielded_text(coll.fields) or coll.title,
        filters=filters,
        fields=coll.fields,
        search={
            "title": coll.title,
            "names": "\n".join(coll.names),
            "subjects": "\n".join(coll.subjects),
            "identifiers": "\n".join(x for x in (coll.unitid, coll.eadid) if x),
        },
    )


def _component_record(coll, frame: Frame, ancestors: list[Frame], el, daos, template: str) -> SourceRecord:
    component_id = el.get("id") or el.get("{http://www.w3.org/XML/1998/namespace}id") or frame.path_id
    series = " › ".join(a.title + (f", {a.date}" if a.date else "") for a in ancestors if a.title)
    title = frame.title or frame.unitid or "Untitled component"
    locator = ", ".join(p for p in (frame.containers, series) if p) or f"component {component_id}"
    fields: list[RecordField] = [("Collection", coll.title + (f" ({coll.unitid})" if coll.unitid else ""))]
    if series:
        fields.append(("Series", series))
    fields.append(("Title", title))
    if frame.date:
        fields.append(("Date", frame.date))
    if frame.containers:
        fields.append(("Location", frame.containers))
    if frame.unitid:
        fields.append(("Identifier", frame.unitid))
    fields.extend(frame.notes)
    fields.extend(("Digital object", d) for d in daos)
    filters: Filters = {"format": "archival component", "collection": coll.title}
    if (year := _year(frame.date)) is not None:
        filters["year"] = year
    return SourceRecord(
        provenance=Provenance(
            source_type="ead",
            record_id=component_id,
            title=title,
            locator=locator,
            container=frame.containers,
            link=_link(template, coll, component_id, daos),
            date=frame.date,
            source_file=str(coll.path.resolve()),
        ),
        text=fielded_text(fields),
        filters=filters,
        fields=fields,
        search={
            "title": title,
            "collection": "\n".join(x for x in (series, coll.title) if x),
            "names": "\n".join(coll.names),
            "subjects": "\n".join(coll.subjects),
            "identifiers": "\n".join(x for x in (frame.unitid, coll.unitid, frame.containers) if x),
        },
    )
