"""Comparison configuration from Settings: ignore rules, tolerances, age and sample."""

from __future__ import annotations

from pathlib import Path

import pytest

from strangler.compare.config import CompareConfig
from strangler.exceptions import ConfigurationError
from strangler.settings import Settings


def test_settings_become_a_compare_config() -> None:
    """The STRANGLER_COMPARE_* and STRANGLER_NOISE_SAMPLE variables are parsed."""
    settings = Settings.from_env(
        {
            "STRANGLER_COMPARE_IGNORE": "fraud_scan.reason, authorize_payment",
            "STRANGLER_COMPARE_TOLERANCES": "fulfill.voucher_count=1",
            "STRANGLER_COMPARE_MAX_AGE_S": "600",
            "STRANGLER_NOISE_SAMPLE": "0.25",
        }
    )
    config = CompareConfig.from_settings(settings)
    assert config.ignore == frozenset({"fraud_scan.reason", "authorize_payment"})
    assert dict(config.tolerances) == {"fulfill.voucher_count": 1.0}
    assert (config.max_age_s, config.noise_sample) == (600.0, 0.25)
    assert config.skips("authorize_payment")
    assert config.rules_for("fraud_scan").ignored == frozenset({"reason"})


def test_defaults() -> None:
    """By default nothing is ignored, the age limit is an hour and 5 % are sampled."""
    config = CompareConfig.from_settings(Settings.from_env({}))
    assert (config.ignore, dict(config.tolerances), config.max_age_s, config.noise_sample) == (
        frozenset(),
        {},
        3600.0,
        0.05,
    )


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"STRANGLER_COMPARE_TOLERANCES": "fulfill.voucher_count"},
            "'fulfill.voucher_count' must look like",
        ),
        (
            {"STRANGLER_COMPARE_TOLERANCES": "fulfill=1"},
            "STRANGLER_COMPARE_TOLERANCES: 'fulfill' is not step.field",
        ),
        ({"STRANGLER_COMPARE_TOLERANCES": "fulfill.voucher_count=-1"}, "tolerance of 0 or more"),
        ({"STRANGLER_COMPARE_IGNORE": "Fraud Scan"}, "STRANGLER_COMPARE_IGNORE: 'Fraud Scan'"),
        ({"STRANGLER_NOISE_SAMPLE": "1.5"}, "STRANGLER_NOISE_SAMPLE must be between 0 and 1"),
        ({"STRANGLER_NOISE_SAMPLE": "some"}, "STRANGLER_NOISE_SAMPLE must be a number"),
        ({"STRANGLER_COMPARE_MAX_AGE_S": "0"}, "STRANGLER_COMPARE_MAX_AGE_S must be above 0"),
    ],
    ids=["no-number", "no-field", "negative", "bad-name", "sample-range", "sample-text", "age"],
)
def test_bad_entries_are_named(environ: dict[str, str], message: str) -> None:
    """Each wrong entry raises a ConfigurationError that names the setting and the entry."""
    with pytest.raises(ConfigurationError, match=message):
        CompareConfig.from_settings(Settings.from_env(environ))


def test_the_toml_file_works_too(tmp_path: Path) -> None:
    """The same settings in the TOML file's [strangler] table give the same config."""
    config_file = tmp_path / "strangler.toml"
    config_file.write_text(
        "[strangler]\n"
        'compare_ignore = ["fraud_scan.reason"]\n'
        'compare_tolerances = ["fulfill.voucher_count=2"]\n'
        "noise_sample = 0.1\n"
    )
    config = CompareConfig.from_settings(Settings.from_env({"STRANGLER_CONFIG": str(config_file)}))
    assert (config.ignore, dict(config.tolerances), config.noise_sample) == (
        frozenset({"fraud_scan.reason"}),
        {"fulfill.voucher_count": 2.0},
        0.1,
    )
