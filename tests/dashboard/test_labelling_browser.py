"""The labelling page in a real headless Chromium against `trainyard ui` (issue 19): 20 items labelled with the
keyboard only, one undone, the suggestion appearing after a retrain; two annotators at once, never on one item."""

from __future__ import annotations

import os

import pytest

from dashboard_helpers import ARTIFACTS, UiServer, chrome, chromium_missing
from labelhelp import WORDS, tickets_csv

pytestmark = [pytest.mark.slow, pytest.mark.skipif(chromium_missing() is not None, reason=chromium_missing() or "")]
CLASSES = list(WORDS)


def truth_of(text: str) -> str:
    """The class whose words the ticket uses (the simulated annotator reads the text on screen)."""
    return next(c for c, words in WORDS.items() if any(w in text.split() for w in words))


@pytest.fixture
def project(tmp_path):
    from trainyard.label.project import create_project
    from trainyard.label.settings import LabelSettings
    from trainyard.registry.workspace import Workspace

    os.environ.setdefault("SE_OFFLINE", "true")  # selenium must never try to download a driver
    home = tmp_path / "ws"
    ws = Workspace.resolve(home)
    path, _ = tickets_csv(tmp_path / "tickets.csv", n=60)
    create_project(ws, "tickets", path, text_col="body", classes=CLASSES,
                   settings=LabelSettings(features="tfidf", retrain_every=50, queue="uncertainty"))
    server = UiServer(home)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield ws, server
    server.stop()


def wait_for(predicate, timeout: float = 20.0, what: str = "condition"):
    import time

    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException

    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            value = predicate()
        except (NoSuchElementException, StaleElementReferenceException):
            value = None
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def shown(driver) -> tuple[str, str]:
    body = driver.find_element("id", "item-body")
    return body.get_attribute("data-item"), driver.find_element("id", "item-text").text


def press(driver, key: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(driver).send_keys(key).perform()


def label_shown(driver) -> str:
    """Press the digit of the class of the item on screen; wait for the next item; return the labelled item's id."""
    item, text = wait_for(lambda: shown(driver) if shown(driver)[0] else None, what="an item")
    press(driver, str(CLASSES.index(truth_of(text)) + 1))
    wait_for(lambda: shown(driver)[0] != item, what="the next item")
    return item


def test_keyboard_only_labelling_undo_and_suggestion_after_retrain(project, tmp_path):
    from selenium.webdriver.common.keys import Keys

    from trainyard.label import ledger
    from trainyard.label.project import get_project

    ws, server = project
    driver = chrome(tmp_path / "profile")
    try:
        driver.get(server.url + "/label/tickets")
        labelled = [label_shown(driver) for _ in range(6)]
        item, _ = shown(driver)
        assert driver.find_element("id", "suggestion").text == "no model yet"
        press(driver, "r")  # retrain now: the page keeps the item and shows the new model's suggestion for it
        wait_for(lambda: "model suggests" in driver.find_element("id", "suggestion").text, what="a suggestion after the retrain")
        assert shown(driver)[0] == item
        press(driver, "c")
        driver.switch_to.active_element.send_keys("checked twice", Keys.ENTER)
        labelled += [label_shown(driver) for _ in range(14)]
        press(driver, "r")  # 20 labels: every class has enough for a cross-validated point on the learning curve
        assert wait_for(lambda: int(driver.find_element("id", "curve").get_attribute("data-points") or 0) >= 1, what="the learning curve")
        press(driver, Keys.ARROW_LEFT)  # undo the last one: it comes back on screen
        wait_for(lambda: shown(driver)[0] == labelled[-1], what="the undone item back on screen")
        driver.save_screenshot(str(ARTIFACTS / "labelling.png"))
    finally:
        driver.quit()
    store = ws.store
    notes = ledger.annotations(store, get_project(store, "tickets"))
    assert len(notes) == 19 and len({n["item_id"] for n in notes}) == 19
    assert [str(n["item_id"]) for n in notes] == labelled[:19]
    texts = {n["item_id"]: n["key"] for n in notes}
    assert all(n["annotator"] == "local" for n in notes) and len(texts) == 19
    assert [n["comment"] for n in notes].count("checked twice") == 1


def test_two_annotators_at_once_never_share_an_item(project, tmp_path):
    from trainyard.label import ledger
    from trainyard.label.annotators import add_annotator
    from trainyard.label.project import get_project

    ws, server = project
    project_row = get_project(ws.store, "tickets")
    tokens = {who: add_annotator(ws.store, project_row, who) for who in ("alice", "bob")}
    drivers = {who: chrome(tmp_path / f"profile-{who}") for who in tokens}
    seen = {who: [] for who in tokens}
    try:
        for who, driver in drivers.items():
            driver.get(f"{server.url}/label/tickets?annotator={tokens[who]}")
            assert wait_for(lambda: driver.find_element("id", "who").text, what="the annotator's name") == who
            assert "annotator=" not in driver.current_url  # the token went into a cookie
        for _ in range(8):
            on_screen = {who: wait_for(lambda d=d: shown(d)[0], what="an item") for who, d in drivers.items()}
            assert on_screen["alice"] != on_screen["bob"]  # leased: never the same item at the same time
            for who, driver in drivers.items():
                seen[who].append(label_shown(driver))
    finally:
        for driver in drivers.values():
            driver.quit()
    assert not set(seen["alice"]) & set(seen["bob"])
    notes = ledger.annotations(ws.store, project_row)
    assert sorted((n["annotator"], str(n["item_id"])) for n in notes) == sorted((w, i) for w, ids in seen.items() for i in ids)
