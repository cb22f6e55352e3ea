"""What the store holds, for the console's filters and its collection-status tab."""

from __future__ import annotations

from collections import Counter
from pathlib import PurePath


def collection_facets(store) -> dict:
    types: Counter[str] = Counter()
    files: Counter[str] = Counter()
    languages: Counter[str] = Counter()
    collections: Counter[str] = Counter()
    years: list[int] = []
    for meta in store.iter_metadata():
        types[str(meta.get("source_type", "?"))] += 1
        if meta.get("source_file"):
            files[str(meta["source_file"])] += 1
        if meta.get("language"):
            languages[str(meta["language"])] += 1
        if meta.get("collection"):
            collections[str(meta["collection"])] += 1
        if isinstance(meta.get("year"), int):
            years.append(meta["year"])
    return {
        "types": dict(types),
        "files": sorted(((PurePath(f).name, f, n) for f, n in files.items()), key=lambda x: x[0].lower()),
        "languages": [lang for lang, _ in languages.most_common(40)],
        "collections": [c for c, _ in collections.most_common(100)],
        "years": (min(years), max(years)) if years else None,
    }
