"""Build the official HL7 FHIR validator runner and its offline package cache (called by scripts/setup.sh).

Idempotent and offline once done: every step is skipped when its result is already there, so a second run asks
no registry anything. The first run asks only Maven Central (the engine, via ``settings.xml``) and the npm
registry (``npm pack`` of four genuine HL7 packages mirrored there).

Layout (all under this folder, git-ignored):
  target/safetyplan-hl7-validator.jar, target/lib/   the runner and the engine's jars (``mvn package``)
  cache/home/.fhir/packages/                         the validator's package cache; the runner is started with
                                                     ``-Duser.home=cache/home`` so it never reads ``~/.fhir``

The package dependencies are pinned to what is installed here: the loader otherwise asks for versions nobody
installed (SDC's ``hl7.fhir.r4.examples``) and loops on the terminology <-> extensions cycle.
Standard library only.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
JAR = HERE / "target" / "safetyplan-hl7-validator.jar"
LIB = HERE / "target" / "lib"
HOME = HERE / "cache" / "home"
PACKAGES = HOME / ".fhir" / "packages"

CORE = ("hl7.fhir.r4.core", "4.0.1")
THO = ("hl7.terminology.r4", "7.0.1")
EXTENSIONS = ("hl7.fhir.uv.extensions.r4", "5.3.0-ballot-tc1")
XVER = ("hl7.fhir.xver-extensions", "0.1.0")
SDC = ("hl7.fhir.uv.sdc", "4.0.0-ballot")

#: npm package -> the dependencies its package.json gets (what is installed here; cycles cut).
NPM_PACKAGES: dict[tuple[str, str], dict[str, str]] = {
    THO: {CORE[0]: CORE[1]},
    EXTENSIONS: {CORE[0]: CORE[1], THO[0]: THO[1]},
    XVER: {CORE[0]: CORE[1]},
    SDC: {CORE[0]: CORE[1], THO[0]: THO[1], EXTENSIONS[0]: EXTENSIONS[1]},
}


def classpath() -> str:
    """The runner's Java class path."""
    return f"{JAR}:{LIB}/*"


def java_command(*args: str, heap: str = "3g") -> list[str]:
    """``java`` running the runner with the project-local package cache."""
    return [
        "java",
        f"-Xmx{heap}",
        "-XX:+UseSerialGC",
        f"-Duser.home={HOME}",
        "-cp",
        classpath(),
        "safetyplan.hl7validator.Main",
        *args,
    ]


def package_dir(package: tuple[str, str]) -> Path:
    """Where ``id#version`` lives in the package cache."""
    return PACKAGES / f"{package[0]}#{package[1]}"


def _installed(package: tuple[str, str]) -> bool:
    manifest = package_dir(package) / "package" / "package.json"
    if not manifest.is_file():
        return False
    data = json.loads(manifest.read_text(encoding="utf-8"))
    return bool(data.get("name") == package[0] and data.get("version") == package[1])


def build_runner() -> None:
    """``mvn package`` the runner unless its jar is newer than its sources."""
    sources = [HERE / "pom.xml", *sorted((HERE / "src").rglob("*.java"))]
    if JAR.is_file() and LIB.is_dir() and all(JAR.stat().st_mtime >= s.stat().st_mtime for s in sources):
        return
    print("hl7-validator: mvn package (first time: Maven Central downloads about 120 MB)", flush=True)
    subprocess.run(
        [
            "mvn",
            "-B",
            "-q",
            "-s",
            str(HERE / "settings.xml"),
            "-f",
            str(HERE / "pom.xml"),
            "package",
            "-DskipTests",
        ],
        check=True,
    )


def build_core() -> None:
    """Rebuild hl7.fhir.r4.core#4.0.1 from the R4 definitions in hapi-fhir-validation-resources-r4."""
    if _installed(CORE):
        return
    print(
        "hl7-validator: rebuilding hl7.fhir.r4.core#4.0.1 from hapi-fhir-validation-resources-r4", flush=True
    )
    PACKAGES.mkdir(parents=True, exist_ok=True)
    subprocess.run(java_command("core-package", str(PACKAGES), heap="2g"), check=True)


def install_npm(package: tuple[str, str], dependencies: dict[str, str]) -> None:
    """``npm pack`` one package, unpack it into the cache, pin its dependencies."""
    if _installed(package):
        return
    name, version = package
    print(f"hl7-validator: npm pack {name}@{version}", flush=True)
    with tempfile.TemporaryDirectory(prefix="hl7-validator-") as tmp:
        out = subprocess.run(
            ["npm", "pack", f"{name}@{version}", "--pack-destination", tmp, "--silent"],
            check=True,
            capture_output=True,
            text=True,
        )
        tgz = Path(tmp) / out.stdout.strip().splitlines()[-1]
        partial = PACKAGES / f"{name}#{version}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        with tarfile.open(tgz) as archive:
            archive.extractall(partial, filter="data")
        manifest_path = partial / "package" / "package.json"
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if manifest.get("name") != name or manifest.get("version") != version:
            raise SystemExit(
                f"hl7-validator: npm gave {manifest.get('name')}@{manifest.get('version')}, "
                f"not {name}@{version}"
            )
        manifest["dependencies"] = dependencies
        manifest_path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        target = package_dir(package)
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)


def main() -> int:
    """Build what is missing; print where the runner is."""
    build_runner()
    build_core()
    for package, dependencies in NPM_PACKAGES.items():
        install_npm(package, dependencies)
    print(f"hl7-validator: ready ({JAR.relative_to(HERE.parent.parent)})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
