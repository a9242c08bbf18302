"""The FHIR NPM package (``package/package.json`` + resources, ``.tgz``) that HAPI and form builders load.

Byte-for-byte reproducible: entries sorted, fixed timestamps and owners, gzip header without a date.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

from fhir_safetyplan import __version__, codes, fhir_r4
from fhir_safetyplan.conformance import all_resources, dumps, filename
from fhir_safetyplan.errors import JSON


def manifest(canonical_base: str) -> JSON:
    """The package.json of the FHIR package."""
    return {
        "name": codes.PACKAGE_NAME,
        "version": codes.QUESTIONNAIRE_VERSION,
        "description": "Sikkerhetsplanlegging (NKVTS) som FHIR R4: Questionnaire (nb, nn, en), CodeSystems, "
        "ValueSets og profiler for journaldokumentasjonen.",
        "author": "fhir-safetyplan",
        "license": "MIT",
        "canonical": canonical_base,
        "fhirVersions": [fhir_r4.FHIR_VERSION],
        "type": "fhir.ig",
        "dependencies": {fhir_r4.CORE_PACKAGE: fhir_r4.FHIR_VERSION},
        "tools-version": 3,
        "generator": f"fhir-safetyplan {__version__}",
    }


def package_files(canonical_base: str | None = None) -> dict[str, bytes]:
    """Every file of the package (path inside the archive → bytes)."""
    base = codes.canonical_base(canonical_base)
    resources = all_resources(base)
    files: dict[str, bytes] = {}
    index = []
    for r in resources:
        name = filename(r)
        files[f"package/{name}"] = dumps(r).encode("utf-8")
        entry: JSON = {"filename": name, "resourceType": r["resourceType"], "id": r["id"]}
        for key in ("url", "version", "kind", "type"):
            if key in r:
                entry[key] = r[key]
        index.append(entry)
    files["package/package.json"] = (json.dumps(manifest(base), indent=2) + "\n").encode()
    files["package/.index.json"] = (
        json.dumps({"index-version": 1, "files": index}, indent=2) + "\n"
    ).encode()
    return files


def build_package(canonical_base: str | None = None) -> bytes:
    """The package as gzip-compressed tar bytes (reproducible)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in sorted(package_files(canonical_base).items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def package_filename() -> str:
    return f"{codes.PACKAGE_NAME}-{codes.QUESTIONNAIRE_VERSION}.tgz"


def write_package(out: Path, canonical_base: str | None = None) -> Path:
    """Write the package ``.tgz`` into directory ``out``; returns its path."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / package_filename()
    path.write_bytes(build_package(canonical_base))
    return path
