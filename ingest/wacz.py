"""WACZ packages (Webrecorder, Browsertrix, ArchiveWeb.page), read in place: nothing is extracted to disk.

- datapackage.json: the collection title, and each file's hash, verified while streaming; a mismatch
  or a missing file is reported (file and member) and reading goes on.
- pages/pages.jsonl and pages/extraPages.jsonl: the page list with titles and, where the crawler
  stored it, the text extracted in the browser.
- The WARCs inside stream through the WARC reader (same provenance, revisits, PDFs, broken records).
- Text the crawler's browser extracted is preferred to re-extracting a dynamic page's HTML: the
  urn:textFinal record, else urn:text, else the page list's text, else the HTML (trafilatura).
  Which one was used is kept with every chunk (text_source) and shown in the locator.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

from assistant.core.types import Provenance, SkippedRecord, SourceRecord
from ingest.registry import ReaderError
from ingest.warc import (
    BROWSER_TEXT_PREFIXES,
    DEFAULT_MAX_PAYLOAD_BYTES,
    DEFAULT_REPLAY,
    MIN_WORDS,
    ArchiveContext,
    _human_date,
    _timestamp14,
    archive_errors,
    iter_archive,
)

PAGE_FILES = ("pages/pages.jsonl", "pages/extraPages.jsonl")
WARC_SUFFIXES = (".warc", ".warc.gz", ".arc", ".arc.gz")


def _page_url(uri: str) -> str:
    for prefix in BROWSER_TEXT_PREFIXES:
        if uri.startswith(prefix):
            return uri[len(prefix) :]
    return uri


class BrowserText:
    """What the crawler's browser extracted, known before the WARCs are read (from the index and the pages)."""

    def __init__(self, pages: dict[str, dict], text_records: dict[str, set[str]]):
        self.pages = pages  # page URL -> {"title", "text", "ts", "id"}
        self.text_records = text_records  # page URL -> {"urn:text", "urn:textFinal"}
        self.used_pages: set[str] = set()

    def resource_choice(self, uri: str) -> tuple[str, str] | None:
        """(page URL, text source) for a urn:text / urn:textFinal record, or None if a better one exists."""
        url = _page_url(uri)
        kind = uri[: len(uri) - len(url) - 1]  # "urn:text" or "urn:textFinal"
        if kind == "urn:text" and "urn:textFinal" in self.text_records.get(url, ()):
            return None
        self.used_pages.add(url)
        return url, kind

    def html_choice(self, uri: str):
        """For a page's HTML: "browser record" (a urn:text record will give its text), (title, text) from
        the page list, or None (extract the HTML)."""
        if self.text_records.get(uri):
            return "browser record"
        page = self.pages.get(uri)
        if page and len((page.get("text") or "").split()) >= MIN_WORDS:
            self.used_pages.add(uri)
            return page.get("title") or uri, page["text"]
        return None

    def title(self, uri: str) -> str:
        return (self.pages.get(uri) or {}).get("title") or ""


def iter_records(
    path: str | Path,
    link_template: str = "",
    payloads=None,
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    extractor=None,
    languages=None,
) -> Iterator:
    """extractor: an ingest.warc.TextExtractor the pages are extracted in (None: in this thread).
    languages: an ingest.language.LanguageTagger for pages that state no language (see ingest.warc)."""
    path = Path(path)
    template = link_template or DEFAULT_REPLAY
    try:
        archive = zipfile.ZipFile(path)
    except FileNotFoundError as exc:
        raise ReaderError(path, "cannot read: no such file") from exc
    except (zipfile.BadZipFile, OSError) as exc:
        raise ReaderError(path, f"not a readable WACZ (zip) file: {exc}") from exc
    with archive:
        names = set(archive.namelist())
        package, problems = _datapackage(archive, names)
        for problem in problems:
            yield SkippedRecord(path=str(path), record="datapackage.json", reason=problem)
        expected = {r.get("path"): r.get("hash", "") for r in package.get("resources", []) if r.get("path")}
        for member in sorted(m for m in expected if m not in names):
            yield SkippedRecord(
                path=str(path), record=member, reason="listed in datapackage.json but missing from the WACZ"
            )
        collection = str(package.get("title") or package.get("name") or "")
        pages = {}
        for name in PAGE_FILES:
            if name in names:
                for problem, page in _read_pages(archive, name, expected.get(name, "")):
                    if problem:
                        yield SkippedRecord(path=str(path), record=name, reason=problem)
                    elif page.get("url") and page["url"] not in pages:
                        pages[page["url"]] = page
        warcs = sorted(n for n in names if n.lower().endswith(WARC_SUFFIXES) and not n.endswith("/"))
        if not warcs:
            raise ReaderError(path, "no WARC files inside (expected archive/*.warc.gz)")
        browser = BrowserText(pages, _browser_text_records(archive, names, warcs))
        suffix = f" · {path.name}" + (f" ({collection})" if collection else "")
        extra = {"wacz_file": path.name, **({"collection": collection} if collection else {})}
        seen: dict[str, str] = {}
        for member in warcs:
            label = f"{path}!{member}"
            ctx = ArchiveContext(
                path=path,
                label=label,
                warc_name=Path(member).name,
                template=template,
                extra_filters=extra,
                locator_suffix=suffix,
                browser=browser,
                seen=seen,
                payloads=payloads,
                max_payload_bytes=max_payload_bytes,
                extractor=extractor,
                languages=languages,
            )
            digest = _Hasher(expected.get(member, ""))
            try:
                with archive.open(member) as raw:
                    stream = digest.wrap(raw)
                    yield from iter_archive(stream, ctx, size=archive.getinfo(member).file_size)
                    stream.drain()
            except ReaderError as exc:  # a broken WARC inside: report it, read the next one
                yield SkippedRecord(path=label, record=exc.record, reason=exc.reason)
                continue
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                yield SkippedRecord(path=label, record="", reason=f"unreadable inside the WACZ: {exc}")
                continue
            if digest.mismatch():
                yield SkippedRecord(path=str(path), record=member, reason=digest.mismatch())
        # Pages the list holds text for but no WARC record gave (e.g. extraPages): still citable.
        for url, page in pages.items():
            if url in browser.used_pages or url in browser.text_records:
                continue
            text = page.get("text") or ""
            if len(text.split()) < MIN_WORDS:
                continue
            record = _page_only(path, url, page, template, collection, suffix)
            if record is not None:
                yield record


def _page_only(path: Path, url: str, page: dict, template: str, collection: str, suffix: str) -> SourceRecord | None:
    date = str(page.get("ts") or "")
    if not date:
        return None
    link = template.format(timestamp=_timestamp14(date), uri=url, id=page.get("id", ""))
    return SourceRecord(
        provenance=Provenance(
            source_type="warc",
            record_id=f"{path.name}#page={page.get('id') or url}",
            title=page.get("title") or url,
            locator=f"captured {_human_date(date)} — {url}{suffix} · text from the WACZ page list",
            captured=_human_date(date),
            link=link,
            date=date,
            source_file=str(path.resolve()),
        ),
        text=f"Archived page {url}, captured {_human_date(date)}.\n{page['text']}",
        filters={
            "uri": url,
            "capture": date[:10],
            "format": "web page",
            "wacz_file": path.name,
            "text_source": "pages.jsonl",
            **({"collection": collection} if collection else {}),
            **({"year": int(date[:4])} if date[:4].isdigit() else {}),
        },
        search={"title": page.get("title") or url, "identifiers": url},
    )


def _datapackage(archive: zipfile.ZipFile, names: set[str]) -> tuple[dict, list[str]]:
    if "datapackage.json" not in names:
        return {}, ["no datapackage.json: the files' hashes cannot be checked"]
    try:
        package = json.loads(archive.read("datapackage.json"))
        if not isinstance(package, dict):
            raise ValueError("not a JSON object")
        return package, []
    except (ValueError, UnicodeDecodeError) as exc:
        return {}, [f"datapackage.json unreadable ({exc}): the files' hashes cannot be checked"]


def _read_pages(archive: zipfile.ZipFile, name: str, expected_hash: str) -> Iterator[tuple[str, dict]]:
    digest = _Hasher(expected_hash)
    with archive.open(name) as raw:
        stream = digest.wrap(raw)
        for number, line in enumerate(io.TextIOWrapper(stream, encoding="utf-8", errors="replace"), 1):
            if not line.strip():
                continue
            try:
                page = json.loads(line)
            except json.JSONDecodeError as exc:
                yield f"line {number}: not JSON ({exc.msg})", {}
                continue
            if number == 1 and "format" in page and "url" not in page:
                continue  # the header line: {"format": "json-pages-1.0", ...}
            if isinstance(page, dict):
                yield "", page
        stream.drain()
    if digest.mismatch():
        yield digest.mismatch(), {}


def _browser_text_records(archive: zipfile.ZipFile, names: set[str], warcs: list[str]) -> dict[str, set[str]]:
    """Page URL -> which urn:text records exist, from the WACZ's CDX(J) index (or the WARC headers)."""
    found: dict[str, set[str]] = {}
    index_names = sorted(
        n for n in names if n.startswith("indexes/") and n.endswith((".cdx", ".cdxj", ".cdx.gz", ".cdxj.gz"))
    )
    try:
        for name in index_names:
            with archive.open(name) as raw:
                stream = gzip.GzipFile(fileobj=raw) if name.endswith(".gz") else raw
                for line in io.TextIOWrapper(stream, encoding="utf-8", errors="replace"):
                    if "urn:text" not in line:
                        continue
                    brace = line.find("{")
                    try:
                        url = json.loads(line[brace:]).get("url", "") if brace >= 0 else ""
                    except json.JSONDecodeError:
                        continue
                    if url.startswith(BROWSER_TEXT_PREFIXES):
                        found.setdefault(_page_url(url), set()).add(url[: len(url) - len(_page_url(url)) - 1])
        if index_names:
            return found
    except (OSError, EOFError, zipfile.BadZipFile):
        found = {}
    # No usable index: read the WARC headers once (payloads are not decoded).
    from warcio.archiveiterator import ArchiveIterator

    for member in warcs:
        try:
            with archive.open(member) as raw:
                for record in ArchiveIterator(raw, arc2warc=True):
                    uri = record.rec_headers.get_header("WARC-Target-URI") or ""
                    if record.rec_type == "resource" and uri.startswith(BROWSER_TEXT_PREFIXES):
                        found.setdefault(_page_url(uri), set()).add(uri[: len(uri) - len(_page_url(uri)) - 1])
        except archive_errors():  # a broken WARC is reported when it is read for real
            continue
    return found


class _Hasher:
    """Hashes a zip member while it is read, to compare with datapackage.json ("sha256:…" or "md5:…")."""

    def __init__(self, expected: str):
        self.expected = expected
        algorithm = expected.split(":", 1)[0] if ":" in expected else ""
        self.hash = hashlib.new(algorithm) if algorithm in ("sha256", "md5", "sha1") else None
        self.stream = None

    def wrap(self, raw):
        self.stream = _HashingReader(raw, self.hash)
        return self.stream

    def mismatch(self) -> str:
        if self.hash is None or self.stream is None or not self.stream.finished:
            return ""
        got = f"{self.expected.split(':', 1)[0]}:{self.hash.hexdigest()}"
        if got != self.expected:
            return f"hash mismatch: datapackage.json says {self.expected}, the file has {got} (read anyway)"
        return ""


class _HashingReader(io.RawIOBase):
    def __init__(self, raw, digest):
        self.raw, self.digest, self.finished = raw, digest, False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.raw.read(len(buffer))
        if not data:
            self.finished = True
            return 0
        if self.digest is not None:
            self.digest.update(data)
        buffer[: len(data)] = data
        return len(data)

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size) if size is not None and size >= 0 else self.raw.read()
        if self.digest is not None and data:
            self.digest.update(data)
        if not data or size is None or size < 0:
            self.finished = True
        return data

    def drain(self) -> None:
        """Reads what the reader left (a WARC's trailing bytes) so the hash covers the whole file."""
        while self.read(1 << 16):
            pass
