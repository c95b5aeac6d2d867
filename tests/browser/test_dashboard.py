"""The dashboard in headless Chromium (Debian's, driven by Playwright) against a real
worker: a submitted job shows up, turns DONE, and its detail shows the outputs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.http import post_form
from tests.images import encode, quadrants

pytestmark = [pytest.mark.kafka, pytest.mark.browser]

CHROMIUM = os.environ.get("IMGPIPE_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("IMGPIPE_TEST_ARTIFACTS", "test-artifacts"))
# Without the background-networking flags Chromium keeps dialling Google's hosts, which
# this machine's closed network refuses.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} not found: `make test` installs Debian's chromium package "
                    "(apt-get install chromium), or set IMGPIPE_CHROMIUM", pytrace=False)
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


def test_dashboard_shows_a_job_turning_done_with_its_outputs(pipeline, browser, tmp_path):
    base = pipeline.env["IMGPIPE_API_URL"]
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(base + "/")
    expect(page.locator("#status")).to_contain_text("partitions", timeout=30_000)

    status, _, body = post_form(f"{base}/api/jobs",
                                {"variant": ["thumb=fit:96x96,webp:q70",
                                             "large=fit:300x300,jpeg:q85"]},
                                {"image": ("photo.jpg", encode(quadrants(480, 320), "JPEG"))})
    assert status == 202, body
    job_id = body["job_id"]

    row = page.locator(f"tr[data-job='{job_id}']")
    expect(row).to_be_visible(timeout=30_000)
    expect(row.locator("td").nth(1)).to_have_text("DONE", timeout=60_000)
    expect(page.locator(".card[data-state='DONE'] b")).not_to_have_text("0")
    expect(page.locator("td[data-lag='normal']")).to_have_text("0", timeout=20_000)

    row.click()
    expect(page.locator("#detail-id")).to_have_text(job_id)
    expect(page.locator("#detail-status")).to_have_text("DONE")
    for variant, width in (("thumb", 96), ("large", 300)):
        image = page.locator(f"#detail-body img[data-variant='{variant}']")
        expect(image).to_be_visible()
        page.wait_for_function("(img) => img.complete && img.naturalWidth > 0",
                               arg=image.element_handle(), timeout=10_000)
        assert image.evaluate("img => img.naturalWidth") == width

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    assert errors == []
    page.close()
