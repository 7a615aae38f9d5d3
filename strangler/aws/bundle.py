"""The Lambda code bundle: the strangler package plus its vendored runtime dependencies.

Dependencies are vendored into the zip, not taken from a layer: one artefact per release,
nothing to publish beforehand, and the versions in the zip are the ones the code was
deployed with. ``pip`` installs the Lambda runtime's wheels (CPython 3.11,
manylinux2014 x86_64, binary only, so nothing is compiled on the deploying machine) of
the few libraries the handlers import: see :data:`LAMBDA_DEPENDENCIES`. boto3 is left out
because the Lambda runtime provides it.

The zip is reproducible (sorted entries, fixed timestamps), so the same code gives the
same bytes, the same S3 key, and no needless new versions.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import strangler
from strangler.aws.exceptions import BundleError

__all__ = [
    "LAMBDA_DEPENDENCIES",
    "Bundle",
    "build_bundle",
    "lambda_requirements",
    "pip_vendor",
]

#: Distributions the Lambda handlers import that the runtime lacks.
LAMBDA_DEPENDENCIES = ("requests", "structlog")
PIP_TIMEOUT_S = 600
_FIXED_TIME = (2020, 1, 1, 0, 0, 0)
_PACKAGE_SUFFIXES = (".py", ".json", ".typed")

Vendor = Callable[[Path, tuple[str, ...]], None]


@dataclass(frozen=True, slots=True)
class Bundle:
    """A built code bundle: the zip's bytes and its SHA-256 (hex)."""

    data: bytes
    sha256: str

    @property
    def key(self) -> str:
        """The S3 key for this bundle: versioned and content-addressed."""
        return f"strangler/{strangler.__version__}/lambda-{self.sha256[:24]}.zip"


def lambda_requirements() -> tuple[str, ...]:
    """The version ranges of LAMBDA_DEPENDENCIES, as strangler's own metadata declares them."""
    declared = [r for r in metadata.requires("strangler") or [] if ";" not in r]
    wanted = {_name(r): r.replace(" ", "") for r in declared if _name(r) in LAMBDA_DEPENDENCIES}
    missing = set(LAMBDA_DEPENDENCIES) - set(wanted)
    if missing:
        raise BundleError(
            f"strangler's metadata does not declare {', '.join(sorted(missing))}; "
            "reinstall the package (pip install -e .)"
        )
    return tuple(sorted(wanted.values()))


def pip_vendor(target: Path, requirements: tuple[str, ...]) -> None:
    """Install the Lambda runtime's wheels of ``requirements`` into ``target`` with pip."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--target",
        str(target),
        "--platform",
        "manylinux2014_x86_64",
        "--implementation",
        "cp",
        "--python-version",
        "3.11",
        "--only-binary=:all:",
        *requirements,
    ]
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=PIP_TIMEOUT_S)
    except subprocess.CalledProcessError as exc:
        stderr = exc.stderr.decode(errors="replace")[-2000:]
        raise BundleError(f"pip could not vendor {' '.join(requirements)}:\n{stderr}") from exc
    except subprocess.TimeoutExpired as exc:
        raise BundleError(f"pip took more than {PIP_TIMEOUT_S}s to vendor dependencies") from exc


def build_bundle(*, vendor: Vendor | None = pip_vendor) -> Bundle:
    """Zip the strangler package and, unless ``vendor`` is None, its Lambda dependencies."""
    package_dir = Path(strangler.__file__).resolve().parent
    with tempfile.TemporaryDirectory(prefix="strangler-bundle-") as scratch:
        vendored = Path(scratch)
        if vendor is not None:
            vendor(vendored, lambda_requirements())
        files = [
            *_package_files(package_dir),
            *((path, path.relative_to(vendored).as_posix()) for path in _tree(vendored)),
        ]
        data = _zip(files)
    return Bundle(data=data, sha256=hashlib.sha256(data).hexdigest())


def _package_files(package_dir: Path) -> Iterable[tuple[Path, str]]:
    root = package_dir.parent
    for path in _tree(package_dir):
        if path.suffix in _PACKAGE_SUFFIXES or path.name == "py.typed":
            yield path, path.relative_to(root).as_posix()


def _tree(directory: Path) -> list[Path]:
    return sorted(
        path
        for path in directory.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    )


def _zip(files: Iterable[tuple[Path, str]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path, name in sorted(files, key=lambda item: item[1]):
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def _name(requirement: str) -> str:
    for separator in "[<>=!~ ":
        requirement = requirement.split(separator, maxsplit=1)[0]
    return requirement.lower()
