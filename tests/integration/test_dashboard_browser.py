"""The ops dashboard in a real headless Chromium against a real ``strangler serve``."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.helpers import require
from tests.integration.sidecar_support import ADMIN_TOKEN, AUTH, Sidecar, running_sidecar

CHROMIUM = os.environ.get("STRANGLER_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("STRANGLER_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
WAIT_S = 15.0

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
from selenium.common.exceptions import TimeoutException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def sidecar(tmp_path: Path, legacy_sim: str) -> Iterator[Sidecar]:
    """``strangler serve`` with the legacy simulator as upstream and legacy app."""
    with running_sidecar(tmp_path, upstream_url=legacy_sim, legacy_url=legacy_sim) as running:
        yield running


@pytest.fixture
def browser() -> Iterator[Any]:
    """Debian's headless Chromium driven by Debian's chromedriver (no browser download)."""
    require(
        shutil.which(CHROMIUM) is not None and shutil.which(CHROMEDRIVER) is not None,
        f"chromium and chromedriver are not installed ({CHROMIUM}, {CHROMEDRIVER})",
    )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
    ):
        options.add_argument(arg)
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER)
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()


def _text(driver: Any, element_id: str) -> str:
    return str(driver.find_element(By.ID, element_id).text)


def _wait_text(driver: Any, element_id: str, expected: str) -> None:
    """Wait until the element's text contains ``expected``; fail showing what it says."""
    try:
        WebDriverWait(driver, WAIT_S).until(lambda d: expected in _text(d, element_id))
    except TimeoutException:
        pytest.fail(
            f"#{element_id} never showed {expected!r}; it shows {_text(driver, element_id)!r}"
        )


def _fill(driver: Any, element_id: str, value: str) -> None:
    field = driver.find_element(By.ID, element_id)
    field.clear()
    field.send_keys(value)


def _rollout(sidecar: Sidecar) -> dict[str, Any]:
    answer = requests.get(f"{sidecar.url}/_strangler/rollout", headers=AUTH, timeout=5)
    answer.raise_for_status()
    body: dict[str, Any] = answer.json()
    return body


def _put_from_page(driver: Any, body: str) -> int:
    """The status of a PUT /_strangler/rollout sent by the page's origin without a token."""
    script = (
        "const done = arguments[arguments.length - 1];"
        "fetch('/_strangler/rollout', {method: 'PUT', headers: {'Content-Type': "
        f"'application/json'}}, body: {body!r}}}).then(r => done(r.status));"
    )
    return int(driver.execute_async_script(script))


def test_dashboard_sets_the_rollout_kills_it_and_refuses_without_the_token(
    sidecar: Sidecar, browser: Any
) -> None:
    """Without the token nothing admin works; with it the page sets the rollout and kills it."""
    browser.get(f"{sidecar.url}/_strangler/")
    _wait_text(browser, "refresh-state", "rollout refused (401)")
    assert _text(browser, "rollout-percentage") == "?"
    _wait_text(browser, "kill-state", "kill switch: unknown: the rollout needs the admin token")
    assert "no change is on the rollout timeline yet" in _text(browser, "report-window")
    assert _put_from_page(browser, '{"percentage": 90, "reason": "no token"}') == 401

    _fill(browser, "token-input", ADMIN_TOKEN)
    browser.find_element(By.ID, "token-save").click()
    _wait_text(browser, "token-state", "Token set for this browser session")
    _wait_text(browser, "rollout-enabled", "yes")

    _fill(browser, "percentage-input", "37")
    _fill(browser, "percentage-reason", "browser test: raise to 37")
    browser.find_element(By.ID, "percentage-apply").click()
    _wait_text(browser, "control-result", "rollout set to 37%")
    _wait_text(browser, "rollout-percentage", "37%")
    assert _rollout(sidecar)["rollout"] == 37
    _wait_text(browser, "report-window", "the current step: orders routed since")
    assert _text(browser, "verdict-status").lower() in {"pass", "hold", "fail"}
    _wait_text(browser, "events-body", "browser test: raise to 37")

    _fill(browser, "kill-reason", "browser test: kill")
    browser.find_element(By.ID, "kill-apply").click()
    WebDriverWait(browser, WAIT_S).until(lambda d: d.switch_to.alert).dismiss()
    _wait_text(browser, "control-result", "kill cancelled")
    assert _rollout(sidecar)["enabled"] is True

    browser.find_element(By.ID, "kill-apply").click()
    WebDriverWait(browser, WAIT_S).until(lambda d: d.switch_to.alert).accept()
    _wait_text(browser, "control-result", "rollout killed")
    _wait_text(browser, "rollout-enabled", "no (killed")
    _wait_text(browser, "kill-state", "KILLED")
    assert (_rollout(sidecar)["enabled"], _rollout(sidecar)["rollout"]) == (False, 37)

    _fill(browser, "enable-reason", "browser test: enable again")
    browser.find_element(By.ID, "enable-apply").click()
    _wait_text(browser, "control-result", "rollout enabled again at 37%")
    _wait_text(browser, "kill-state", "kill switch: off")
    _wait_text(browser, "events-body", "browser test: enable again")
    assert _last_audit(sidecar)[:2] == ("enable", "browser test: enable again")

    browser.find_element(By.ID, "token-forget").click()
    _fill(browser, "percentage-input", "50")
    _fill(browser, "percentage-reason", "browser test: no token any more")
    browser.find_element(By.ID, "percentage-apply").click()
    _wait_text(browser, "control-result", "refused (401)")
    assert _rollout(sidecar)["rollout"] == 37


def _last_audit(sidecar: Sidecar) -> tuple[str, str]:
    lines = (sidecar.data_dir / "rollout-audit.jsonl").read_text().splitlines()
    record = json.loads(lines[-1])
    return record["action"], record["reason"]


def _use_token(browser: Any, sidecar: Sidecar) -> None:
    browser.get(f"{sidecar.url}/_strangler/")
    _fill(browser, "token-input", ADMIN_TOKEN)
    browser.find_element(By.ID, "token-save").click()
    _wait_text(browser, "rollout-stage", "off")


def test_dashboard_walks_the_stages_and_shows_the_gate(sidecar: Sidecar, browser: Any) -> None:
    """Stage and kill state in the banner; going live without evidence is refused, then
    forced; in shadow-first mode the instant weight control moves the weight; the A/B
    arms, the noise n and both charts are drawn."""
    _use_token(browser, sidecar)
    _wait_text(browser, "stage-state", "stage: off")
    assert not browser.find_element(By.ID, "weight-form").is_displayed()

    browser.find_element(By.CSS_SELECTOR, "#stage-select option[value=shadow]").click()
    _fill(browser, "stage-reason", "browser test: shadow")
    browser.find_element(By.ID, "stage-apply").click()
    _wait_text(browser, "control-result", "stage shadow")
    _wait_text(browser, "rollout-shares", "instant 0%, shadow 100%")
    _wait_text(browser, "weight-form", "Shadow-first: instant weight")

    browser.find_element(By.CSS_SELECTOR, "#stage-select option[value=live]").click()
    _fill(browser, "stage-percent", "5")
    _fill(browser, "stage-reason", "browser test: live")
    browser.find_element(By.ID, "stage-apply").click()
    _wait_text(browser, "control-result", "refused (409)")
    assert "no comparisons yet" in _text(browser, "control-result")
    assert _rollout(sidecar)["stage"] == "shadow"

    browser.find_element(By.ID, "stage-no-evidence").click()
    browser.find_element(By.ID, "stage-apply").click()
    _wait_text(browser, "control-result", "went live without comparison evidence")
    _wait_text(browser, "stage-state", "stage: live")
    _wait_text(browser, "events-body", "(no evidence)")

    _fill(browser, "weight-input", "20")
    _fill(browser, "weight-reason", "browser test: instant 20")
    browser.find_element(By.ID, "weight-apply").click()
    _wait_text(browser, "control-result", "instant weight set to 20%")
    assert _rollout(sidecar)["variants"] == {"instant": 20, "shadow": 80}

    _wait_text(browser, "verdict-status", "")
    assert _text(browser, "verdict-status").lower() in {"pass", "hold", "fail"}
    assert "the current step: orders routed since" in _text(browser, "report-window")
    _wait_text(browser, "noise-summary", "noise sample: n = ")
    _wait_text(browser, "ab-body", "fraud_reject")
    drawn = browser.find_elements(By.CSS_SELECTOR, "#share-chart polyline")
    assert {line.get_attribute("data-series") for line in drawn} == {"instant", "shadow"}
    (threshold,) = browser.find_elements(By.CSS_SELECTOR, "#mismatch-chart line")
    # The report's default threshold, 0.5 %, on a 0..1 % axis: halfway up the plot.
    assert (threshold.get_attribute("data-line"), threshold.get_attribute("y1")) == (
        "threshold",
        "100",
    )


def test_cross_site_write_is_refused_even_with_the_token(sidecar: Sidecar) -> None:
    """A write whose Origin is another site is answered 403 and changes nothing."""
    answer = requests.put(
        f"{sidecar.url}/_strangler/rollout",
        json={"percentage": 80, "reason": "forged"},
        headers={**AUTH, "Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"},
        timeout=5,
    )
    assert (answer.status_code, answer.json()["error"]) == (403, "cross_site_write")
    assert _rollout(sidecar)["rollout"] != 80


def test_dashboard_says_when_a_change_is_live_but_not_on_the_timeline(
    sidecar: Sidecar, browser: Any
) -> None:
    """The ledger refuses the timeline write: the change stands, and the page says so."""
    refusal = "rollout_events refused by the test"
    with sqlite3.connect(sidecar.data_dir / "ledger.sqlite3", timeout=5) as db:
        db.execute(
            "CREATE TRIGGER refuse_rollout_events BEFORE INSERT ON rollout_events "
            f"BEGIN SELECT RAISE(ABORT, '{refusal}'); END"
        )
    _use_token(browser, sidecar)
    _wait_text(browser, "rollout-enabled", "yes")

    _fill(browser, "percentage-input", "42")
    _fill(browser, "percentage-reason", "browser test: timeline refused")
    browser.find_element(By.ID, "percentage-apply").click()
    _wait_text(browser, "control-result", "rollout set to 42%; it is live but NOT on the rollout")
    assert refusal in _text(browser, "control-result")
    assert _rollout(sidecar)["rollout"] == 42
    assert _last_audit(sidecar)[:2] == ("set_percentage", "browser test: timeline refused")
