"""The ops dashboard in a real headless Chromium against a real ``strangler serve``."""

from __future__ import annotations

import os
import shutil
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
    assert _text(browser, "verdict-status") in {"pass", "hold", "fail"}
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
    assert (_rollout(sidecar)["enabled"], _rollout(sidecar)["rollout"]) == (False, 37)

    browser.find_element(By.ID, "token-forget").click()
    _fill(browser, "percentage-input", "50")
    _fill(browser, "percentage-reason", "browser test: no token any more")
    browser.find_element(By.ID, "percentage-apply").click()
    _wait_text(browser, "control-result", "refused (401)")
    assert _rollout(sidecar)["rollout"] == 37


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
