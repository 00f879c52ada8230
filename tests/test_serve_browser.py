"""The demo page in a real headless browser: Debian's chromium driven by Selenium through
Debian's chromium-driver (installed with apt-get when missing and possible, else skipped).

The test serves an item-kNN model of MovieLens-100K with its titles, types a title, clicks
it into the session, reads the recommendations and saves a screenshot. Set
``SEQREC_SCREENSHOTS=docs/img`` to write it where the README shows it (by default it goes
to the test's temporary folder, so test runs leave the work tree alone).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("selenium")

from _serve import running_server  # noqa: E402
from seqrec.data.readers import read_movielens  # noqa: E402
from seqrec.models.knn import ItemKNNConfig  # noqa: E402
from seqrec.recommender import Recommender  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
DRIVER = "/usr/bin/chromedriver"


def _browser() -> tuple[str, str]:
    """Debian's chromium and chromedriver, installed with apt-get if absent (as root)."""
    if not (Path(CHROMIUM).exists() and Path(DRIVER).exists()):
        if os.environ.get("SEQREC_NO_APT") or not shutil.which("apt-get") or os.geteuid() != 0:
            pytest.skip(
                "headless browser test: needs Debian's chromium and chromium-driver "
                "(apt-get install -y chromium chromium-driver), and cannot install them here"
            )
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        try:
            subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=600)
            subprocess.run(
                ["apt-get", "install", "-y", "-qq", "chromium", "chromium-driver"],
                check=True,
                env=env,
                timeout=900,
                capture_output=True,
            )
        except (subprocess.SubprocessError, OSError) as e:
            pytest.skip(f"headless browser test: installing chromium failed ({e})")
    return CHROMIUM, DRIVER


@pytest.fixture(scope="module")
def ml100k_model(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = data_dir / "ml-100k"
    titles = folder / "ml-100k.item"
    if not (folder / "u.data").is_file() or not titles.is_file():
        pytest.skip(f"browser test: {folder}/u.data and ml-100k.item needed")
    out = tmp_path_factory.mktemp("demo") / "iknn"
    Recommender(ItemKNNConfig()).fit(read_movielens(folder / "u.data")).save(out)
    return out, titles


def test_demo_page_in_chromium(ml100k_model: tuple[Path, Path], tmp_path: Path) -> None:
    from selenium import webdriver
    from selenium.common.exceptions import (
        NoSuchElementException,
        StaleElementReferenceException,
    )
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    chromium, driver_path = _browser()
    model, titles = ml100k_model
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,560"):
        opts.add_argument(arg)
    with running_server(model, ["--titles", str(titles)]) as url:
        driver = webdriver.Chrome(service=Service(driver_path), options=opts)
        try:
            # the page re-renders its lists as answers arrive: an element found a moment ago
            # may be replaced before it is used, so every wait looks it up again
            wait = WebDriverWait(
                driver,
                20,
                ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
            )

            def click(css: str) -> tuple[str, str]:
                """Click the element ``css`` names once it is shown; its item id and title."""

                def attempt(d: webdriver.Chrome) -> tuple[str, str] | bool:
                    el = d.find_element(By.CSS_SELECTOR, css)
                    if not (el.is_displayed() and el.is_enabled()):
                        return False
                    got = (
                        el.get_attribute("data-item-id"),
                        el.find_element(By.CLASS_NAME, "title").text,
                    )
                    el.click()
                    return got

                return wait.until(attempt)

            driver.get(url + "/demo")
            wait.until(lambda d: "iknn" in d.find_element(By.ID, "model-meta").text)
            # with nothing in the session: the model's empty-history answer, flagged
            wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#recs li")) == 10)
            assert "empty history" in driver.find_element(By.ID, "note").text
            before = wait.until(
                lambda d: [
                    li.get_attribute("data-item-id")
                    for li in d.find_elements(By.CSS_SELECTOR, "#recs li")
                ]
            )

            box = driver.find_element(By.ID, "search")
            box.send_keys("star wars")
            assert click("#search-results li[data-item-id='50']") == ("50", "Star Wars")
            wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#session li")) == 1)
            wait.until(lambda d: d.find_element(By.ID, "note").text == "")

            def recs(d: webdriver.Chrome) -> list[tuple[str, str, str]]:
                rows = d.find_elements(By.CSS_SELECTOR, "#recs li")
                return [
                    (
                        r.get_attribute("data-item-id"),
                        r.find_element(By.CLASS_NAME, "title").text,
                        r.find_element(By.CLASS_NAME, "score").text,
                    )
                    for r in rows
                ]

            after = wait.until(lambda d: (r := recs(d)) and r[0][0] not in before[:1] and r)
            assert len(after) == 10 and "50" not in [a[0] for a in after]  # exclude seen
            assert all(title and not title.startswith("#") for _, title, _ in after)
            assert all(float(score) > 0 for *_, score in after)

            # a second item: click a recommendation into the session
            first_id, _ = click("#recs li")
            wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#session li")) == 2)
            wait.until(lambda d: first_id not in [r[0] for r in recs(d)])
            box.clear()
            box.send_keys("empire")
            wait.until(
                lambda d: any(
                    "Empire" in li.text
                    for li in d.find_elements(By.CSS_SELECTOR, "#search-results li")
                )
            )
            shots = Path(os.environ.get("SEQREC_SCREENSHOTS", tmp_path))
            shots.mkdir(parents=True, exist_ok=True)
            assert driver.save_screenshot(str(shots / "serve-demo.png"))
        finally:
            driver.quit()
