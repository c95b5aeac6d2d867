"""The dashboard in headless Chromium (Debian's, driven by Playwright) against a real
worker: jobs show up with their file names and thumbnails, turn DONE, open beside the
list (or over it on a narrow screen) in view, can be searched and paged, and the
dead-letter replay hint is a command that works when pasted."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.http import post_form, request
from tests.images import encode, quadrants

pytestmark = [pytest.mark.kafka, pytest.mark.browser]

CHROMIUM = os.environ.get("IMGPIPE_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("IMGPIPE_TEST_ARTIFACTS", "test-artifacts"))
# Without the background-networking flags Chromium keeps dialling Google's hosts, which
# this machine's closed network refuses.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SPECS = ["thumb=fit:96x96,webp:q70", "large=fit:300x300,jpeg:q85"]


@pytest.fixture(scope="module")
def browser():
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} not found: `make test` installs Debian's chromium package "
                    "(apt-get install chromium), or set IMGPIPE_CHROMIUM", pytrace=False)
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


def submit(base: str, filename: str, data: bytes, label: str = "") -> str:
    fields: dict = {"variant": SPECS}
    if label:
        fields["label"] = label
    status, _, body = post_form(f"{base}/api/jobs", fields, {"image": (filename, data)})
    assert status == 202, body
    return body["job_id"]


def in_view(page, selector: str) -> bool:
    box = page.locator(selector).bounding_box()
    size = page.viewport_size
    return bool(box) and box["y"] >= 0 and box["y"] + 40 <= size["height"] \
        and box["x"] >= 0 and box["x"] + 40 <= size["width"]


def test_dashboard_an_operator_keeps_open(pipeline, browser, tmp_path):
    base = pipeline.env["IMGPIPE_API_URL"]
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(base + "/")
    expect(page.locator("#status")).to_contain_text("partitions", timeout=30_000)

    beach = submit(base, "beach sunset.jpg", encode(quadrants(480, 320), "JPEG"), "holiday")
    city = submit(base, "city night.jpg", encode(quadrants(320, 480), "JPEG"))
    # A truncated JPEG passes the upload's header check and fails in the worker: a
    # dead letter with a replay hint.
    broken = submit(base, "broken.jpg", encode(quadrants(640, 480), "JPEG")[:2000])

    row = page.locator(f"tr[data-job='{beach}']")
    expect(row).to_be_visible(timeout=30_000)
    expect(row.locator("td[data-status]")).to_have_text("DONE", timeout=60_000)
    expect(row.locator("td.name")).to_have_text("beach sunset.jpg")
    thumb = row.locator("td.thumb img")
    page.wait_for_function("(img) => img.complete && img.naturalWidth > 0",
                           arg=thumb.element_handle(), timeout=15_000)
    assert thumb.evaluate("img => img.naturalWidth") == 96  # the smallest output
    expect(page.locator(".card[data-state='DONE'] b")).not_to_have_text("0")
    expect(page.locator("td[data-lag='normal']")).to_have_text("0", timeout=20_000)
    expect(page.locator("#workers tr[data-worker] td.partitions")).not_to_have_text("none")
    expect(page.locator("#lag-legend [data-series='normal']")).to_be_visible()

    # A click shows the job beside the list, in view, with its outputs and facts.
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    row.click()
    expect(page.locator("#detail-id")).to_have_text(beach)
    expect(page.locator("#detail-status")).to_have_text("DONE")
    expect(page.locator("dd[data-fact='file']")).to_have_text("beach sunset.jpg")
    expect(page.locator("dd[data-fact='label']")).to_have_text("holiday")
    expect(page.locator("dd[data-fact='source']")).to_have_text("480\u00d7320 jpeg, 8-bit")
    colour = page.locator("dd[data-fact='dominant colour']")
    expect(colour).to_have_text(re.compile(r"#[0-9a-f]{6}$"))
    swatch = colour.locator(".swatch").evaluate("s => getComputedStyle(s).backgroundColor")
    hex_colour = colour.inner_text().strip()[-7:]
    assert swatch == "rgb({}, {}, {})".format(*bytes.fromhex(hex_colour[1:])), swatch
    expect(page.locator("dd[data-fact='placeholder']")).to_have_text(re.compile(r"^\S{28}$"))
    assert in_view(page, "#detail-id"), "the job's detail is out of view after the click"
    for variant, width in (("thumb", 96), ("large", 300)):
        image = page.locator(f"#detail-body img[data-variant='{variant}']")
        expect(image).to_be_visible()
        page.wait_for_function("(img) => img.complete && img.naturalWidth > 0",
                               arg=image.element_handle(), timeout=10_000)
        assert image.evaluate("img => img.naturalWidth") == width
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=False)

    # Search by file name, by job id, and a miss; paging says what it shows.
    expect(page.locator(f"tr[data-job='{city}'] td[data-status]")).to_have_text(
        "DONE", timeout=60_000)
    page.fill("#search", "sunset")
    expect(page.locator("tr.job")).to_have_count(1, timeout=10_000)
    expect(page.locator(f"tr[data-job='{beach}']")).to_be_visible()
    expect(page.locator("#page-info")).to_have_text("1\u20131 of 1")
    page.fill("#search", city)
    expect(page.locator("tr.job")).to_have_count(1, timeout=10_000)
    expect(page.locator(f"tr[data-job='{city}']")).to_be_visible()
    page.fill("#search", "no such photo")
    expect(page.locator("#jobs tbody")).to_contain_text("no jobs match", timeout=10_000)
    page.fill("#search", "")
    expect(page.locator("tr.job")).to_have_count(3, timeout=10_000)
    expect(page.locator("#page-info")).to_have_text("1\u20133 of 3")
    expect(page.locator("#page-next")).to_be_disabled()

    # The dead letter's hint is a command that replays exactly that record.
    hint = page.locator("#dlq code.hint").first
    expect(hint).to_contain_text("--from-offset", timeout=60_000)
    expect(page.locator("#dlq tbody")).to_contain_text(broken)
    args = shlex.split(hint.inner_text())
    assert args[:2] == ["imgpipe", "replay"]
    code, summary = pipeline.cli_json(*args[1:], "--dry-run", "--json")
    assert code == 0, summary
    assert summary["read"] == 1 and summary["matched"] == 1, summary

    # A narrow screen: the open job covers the list instead of landing below it.
    page.set_viewport_size({"width": 760, "height": 900})
    expect(page.locator("#detail.open")).to_be_visible()  # the open job covers the list
    page.keyboard.press("Escape")
    expect(page.locator("#detail-job")).to_be_hidden()
    page.evaluate("window.scrollTo(0, document.body.scrollHeight / 2)")
    page.locator(f"tr[data-job='{city}']").click()
    expect(page.locator("#detail-id")).to_have_text(city)
    assert in_view(page, "#detail-id")
    page.screenshot(path=str(ARTIFACTS / "dashboard-narrow.png"), full_page=False)
    page.keyboard.press("Escape")
    expect(page.locator("#detail-job")).to_be_hidden()
    assert errors == []
    page.close()


def test_the_job_list_pages_and_searches_through_the_api(pipeline):
    base = pipeline.env["IMGPIPE_API_URL"]
    ids = [submit(base, f"page-{i}.png", encode(quadrants(40, 30))) for i in range(3)]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # pages are stable once every job is finished
        _, _, body = request("GET", f"{base}/api/jobs?q=page-&status=DONE&limit=1")
        if json.loads(body)["total"] == 3:
            break
        time.sleep(0.5)
    status, _, body = request("GET", f"{base}/api/jobs?q=page-&limit=2&offset=0")
    first = json.loads(body)
    status2, _, body2 = request("GET", f"{base}/api/jobs?q=page-&limit=2&offset=2")
    second = json.loads(body2)
    assert status == status2 == 200
    assert first["total"] == second["total"] == 3
    seen = [j["job_id"] for j in first["jobs"] + second["jobs"]]
    assert sorted(seen) == sorted(ids) and len(first["jobs"]) == 2
    bad, _, reply = request("GET", f"{base}/api/jobs?offset=-1")
    assert bad == 400 and json.loads(reply)["code"] == "bad_param"
    bad, _, reply = request("GET", f"{base}/api/jobs?q=" + "x" * 201)
    assert bad == 400
