"""The Lambda code bundle: what goes in, reproducibly, and what the handlers import."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from strangler.aws.bundle import LAMBDA_DEPENDENCIES, build_bundle, lambda_requirements
from strangler.aws.exceptions import BundleError

# What the Lambda runtime provides (boto3 and its dependencies) plus what is vendored.
LAMBDA_SAFE = {
    "strangler",
    "boto3",
    "botocore",
    "jmespath",
    "dateutil",
    "s3transfer",
    "urllib3",
    "six",
    "requests",
    "idna",
    "certifi",
    "charset_normalizer",
    "structlog",
    "greenlet",  # structlog imports it only when it is installed
    "cython_runtime",  # loaded along with any compiled extension module
}


def _fake_vendor(target: Path, requirements: tuple[str, ...]) -> None:
    (target / "requests").mkdir()
    (target / "requests" / "__init__.py").write_text("# vendored\n")
    (target / "requirements.json").write_text(json.dumps(list(requirements)))


def _names(data: bytes) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.namelist()


def test_bundle_holds_the_package_and_the_vendored_dependencies() -> None:
    """The zip has the handlers, the ASL definition and what the vendor step installed."""
    names = _names(build_bundle(vendor=_fake_vendor).data)
    for expected in (
        "strangler/__init__.py",
        "strangler/instant/handlers.py",
        "strangler/instant/dispatcher.py",
        "strangler/instant/order_pipeline.asl.json",
        "strangler/py.typed",
        "requests/__init__.py",
    ):
        assert expected in names
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]


def test_vendor_gets_the_declared_version_ranges() -> None:
    """The vendor step is asked for exactly the Lambda dependencies, with strangler's ranges."""
    bundle = build_bundle(vendor=_fake_vendor)
    with zipfile.ZipFile(io.BytesIO(bundle.data)) as archive:
        requested = json.loads(archive.read("requirements.json"))
    assert requested == list(lambda_requirements())
    assert sorted(LAMBDA_DEPENDENCIES) == sorted(r.split("<")[0].split(">")[0] for r in requested)


def test_bundle_is_reproducible() -> None:
    """The same code gives the same bytes, hence the same S3 key and no new versions."""
    first, second = build_bundle(vendor=None), build_bundle(vendor=None)
    assert (first.sha256, first.key) == (second.sha256, second.key)
    assert first.key.startswith("strangler/0.1.0/lambda-")


def test_vendor_failures_surface_as_bundle_errors() -> None:
    """A failing vendor step stops the build with its own error."""

    def broken(target: Path, requirements: tuple[str, ...]) -> None:
        raise BundleError("pip could not vendor requests")

    with pytest.raises(BundleError, match="pip could not vendor"):
        build_bundle(vendor=broken)


def test_lambda_entry_points_import_only_what_the_bundle_has() -> None:
    """The handlers and dispatcher import with only the zip's packages importable.

    Packages outside the bundle are made unimportable in the child, as in Lambda, so an
    optional import a library makes only when the package is present (structlog's rich,
    requests' socks) is skipped there too, and a hard dependency on one fails the import.
    """
    code = (
        "import sys, json\n"
        f"safe = {sorted(LAMBDA_SAFE)!r}\n"
        "stdlib = set(sys.stdlib_module_names)\n"
        "class Bundle:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        top = name.split('.')[0]\n"
        "        if top in stdlib or top in safe or top.startswith('_') or top == 'strangler':\n"
        "            return None\n"
        "        raise ImportError(f'{top} is not in the Lambda bundle')\n"
        "sys.meta_path.insert(0, Bundle())\n"
        "import strangler.instant.handlers, strangler.instant.dispatcher\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    stdlib = set(sys.stdlib_module_names) | {"_distutils_hack", "__main__"}
    third_party = {
        name for name in json.loads(out) if name not in stdlib and not name.startswith("_")
    }
    assert set() == third_party - LAMBDA_SAFE - {"strangler"}
