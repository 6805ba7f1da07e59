"""The journey editor in Chromium: a journey built with the forms only (an event trigger, a wait, an if on a
person property, a webhook in its then branch), the server's refusal of a field shown under that field, the
JSON view following the forms and the forms following the JSON view; saved, reloaded, and the definition on
the journey's page equal to the one intended."""

from __future__ import annotations

import json
from typing import Any

import pytest
from test_web_browser import _no_page_errors, page
from web_pages_support import shot, wait_ready

from web_site import Site, needs_chromium

__all__ = ["_no_page_errors", "page"]
pytestmark = [pytest.mark.browser, needs_chromium]

HOOK = "https://crm.example.com/hooks/trial"
BODY = {"lead": "{{person.login_id}}", "source": "edupulse"}
EXPECTED = {
    "name": "Trial follow-up built with forms",
    "trigger": {"event": "trial_booked"},
    "steps": [
        {"wait": {"value": 2, "unit": "hour"}},
        {"if": {"property": "person.grade", "op": "gte", "value": 3},
         "then": [{"action": "webhook", "url": HOOK, "channel": "crm-hooks", "body": BODY}]},
    ],
    "holdout": 0.2,
    "goal": {"event": "order_paid", "within": {"value": 7, "unit": "day"}},
}
# as the server keeps it: with the defaults it filled in
SAVED = {**EXPECTED, "language": "zh", "steps": [{"wait": {**EXPECTED["steps"][0]["wait"], "timezone": "project"}},
                                                 EXPECTED["steps"][1]]}


def json_view(tab: Any) -> Any:
    return json.loads(tab.input_value("[data-testid=journey-json]"))


def set_value(tab: Any, testid: str, value: str) -> None:
    field = tab.locator(f'[data-testid="{testid}"]')
    field.fill(value)
    field.dispatch_event("change")


def previewed(tab: Any) -> None:
    """Until the editor's first check by the server (the reach preview) has answered."""
    tab.wait_for_function("Number(document.getElementById('journey-editor').dataset.previewed || 0) > 0")


def add_webhook_channel(site: Site) -> None:
    """Webhooks are signed with a channel's secret, which an admin adds."""
    with site.signed_in() as (http, csrf):
        added = http.put("/api/v1/journey-channels/crm-hooks", headers={"X-CSRF-Token": csrf},
                         json={"kind": "webhook", "secrets": {"signing_secret": "s3cret-for-the-crm"}})
        assert added.status_code == 200, added.text


def build_with_forms(page: Any) -> None:
    """Event trigger -> wait 2 hours -> if grade >= 3 then webhook, holdout 20%, with the forms only."""
    for _ in range(3):  # the example's steps go
        page.click('[data-testid="step-0-remove"]')
    set_value(page, "journey-name", EXPECTED["name"])
    page.select_option("[data-testid=trigger-kind]", "event")
    page.select_option("[data-testid=trigger-event]", "trial_booked")

    page.select_option("[data-testid=add-step]", "wait")
    set_value(page, "step-0-wait-value", "2")
    page.select_option('[data-testid="step-0-wait-unit"]', "hour")

    page.select_option("[data-testid=add-step]", "if")
    page.select_option('[data-testid="step-1-cond-property-0"]', "person.grade")
    page.select_option('[data-testid="step-1-cond-op-0"]', "gte")
    set_value(page, "step-1-cond-value-0", "3")

    page.select_option('[data-testid="add-step-1.then"]', "webhook")
    set_value(page, "step-1.then.0-url", "http://127.0.0.1:9/hook")
    # the server refuses a loopback address: the reason shows under the URL field, not only in a banner
    refusal = page.locator('[data-error-for="steps.1.then.0.url"]')
    refusal.wait_for()
    assert "not a public address" in refusal.inner_text()
    set_value(page, "step-1.then.0-url", HOOK)
    page.select_option('[data-testid="step-1.then.0-channel"]', "crm-hooks")
    set_value(page, "step-1.then.0-body", json.dumps(BODY))
    set_value(page, "journey-holdout", "20")


def test_build_a_journey_with_forms_save_reload_and_read_its_json(page: Any, site: Site) -> None:
    add_webhook_channel(site)
    page.goto(site.url + "/journeys")
    wait_ready(page)
    previewed(page)
    build_with_forms(page)
    page.wait_for_function("document.querySelectorAll('.field-error').length === 0")
    page.wait_for_function("document.getElementById('journey-reach').textContent !== '—'")
    assert json_view(page) == EXPECTED
    assert page.locator("ol.jedit-steps li.jedit-step").count() == 3  # the webhook is drawn inside the if
    shot(page, "journey-editor")

    # the JSON view drives the forms as well: an edit there redraws the cards
    edited = {**EXPECTED, "steps": [*EXPECTED["steps"], {"exit": True}]}
    page.fill("[data-testid=journey-json]", json.dumps(edited))
    page.wait_for_selector('[data-step="2"].jedit-exit')
    page.click('[data-testid="step-2-remove"]')
    assert json_view(page) == EXPECTED

    page.click("#journey-create")
    page.wait_for_url(site.url + "/journeys/*")
    journey_id = int(page.url.rsplit("/", 1)[1])
    page.reload()
    wait_ready(page)
    page.click("#journey-edit summary")
    page.wait_for_selector("[data-testid=journey-json]")
    assert json_view(page) == SAVED
    assert page.input_value('[data-testid="step-1.then.0-url"]') == HOOK
    shot(page, "journey-edit")
    with site.api() as http:
        saved = http.get(f"/api/v1/journeys/{journey_id}").json()
    assert saved["trigger"] == {"event": "trial_booked", "filters": []}
    assert saved["steps"][1]["then"][0]["body"] == BODY
    assert saved["holdout"] == 0.2

    # a change on the journey's page is a new version
    page.select_option('[data-testid="step-0-wait-unit"]', "day")
    page.click("#journey-save")
    page.wait_for_function("document.querySelector('#journey-summary').textContent.includes('Version 2')")
    with site.api() as http:
        changed = http.get(f"/api/v1/journeys/{journey_id}").json()
    assert changed["steps"][0]["wait"]["unit"] == "day"


RECALL = {
    "name": "Trial booked, not attended",  # the example's name and goal stay
    "trigger": {"schedule": {"every": "week", "at": "10:30", "weekday": "fri"},
                "audience": {"tag": "missed_3_in_a_row"}},
    "steps": [{"split": [
        {"weight": 0.7, "steps": [{"action": "task", "title": {"zh": "回访", "en": "Call back"}, "assign": "capacity",
                                   "due": {"value": 2, "unit": "day"}}]},
        {"weight": 0.3, "steps": [{"wait": {"until": "09:00", "timezone": "recipient"}}]}]}],
    "holdout": 0.1,
    "goal": {"event": "order_paid", "within": {"value": 7, "unit": "day"}},
    "caps": {"per_day": 2},
}


def test_a_weekly_tag_journey_with_a_split_is_built_with_forms(page: Any, site: Site) -> None:
    page.goto(site.url + "/journeys")
    wait_ready(page)
    previewed(page)
    for _ in range(3):
        page.click('[data-testid="step-0-remove"]')
    page.select_option("[data-testid=trigger-kind]", "schedule")
    page.select_option("[data-testid=schedule-every]", "week")
    page.select_option("[data-testid=schedule-weekday]", "fri")
    set_value(page, "schedule-at", "10:30")
    page.select_option("[data-testid=audience-kind]", "tag")
    page.select_option("[data-testid=audience-tag]", "missed_3_in_a_row")

    page.select_option("[data-testid=add-step]", "split")
    set_value(page, "step-0-arm-0-weight", "70")
    set_value(page, "step-0-arm-1-weight", "30")
    page.select_option('[data-testid="add-step-0.0"]', "task")
    set_value(page, "step-0.0.0-title-zh", "回访")
    set_value(page, "step-0.0.0-title-en", "Call back")
    page.select_option('[data-testid="step-0.0.0-assign"]', "capacity")
    set_value(page, "step-0.0.0-due-value", "2")
    page.select_option('[data-testid="add-step-0.1"]', "wait")
    page.select_option('[data-testid="step-0.1.0-wait-mode"]', "until")
    page.select_option('[data-testid="step-0.1.0-wait-timezone"]', "recipient")
    set_value(page, "cap-day", "2")
    assert json_view(page) == RECALL
    page.wait_for_function("document.getElementById('journey-reach').textContent.includes('with the tag value')")
    assert page.locator(".field-error").count() == 0
    shot(page, "journey-editor-split")


def test_a_set_tag_step_offers_uploaded_tags_and_shows_the_servers_refusal(page: Any, site: Site) -> None:
    with site.api() as http:
        made = http.post("/api/v1/tags", json={"name": "call_score", "value_type": "number",
                                               "definition": {"type": "uploaded"}})
        assert made.status_code in (201, 409), made.text
    page.goto(site.url + "/journeys")
    wait_ready(page)
    previewed(page)
    for _ in range(3):
        page.click('[data-testid="step-0-remove"]')
    page.select_option("[data-testid=trigger-kind]", "event")
    page.select_option("[data-testid=trigger-event]", "trial_booked")
    page.select_option("[data-testid=add-step]", "set_tag")
    offered = page.eval_on_selector_all('[data-testid="step-0-tag"] option', "os => os.map(o => o.value)")
    assert "call_score" in offered
    assert "missed_3_in_a_row" not in offered
    page.select_option('[data-testid="step-0-tag"]', "call_score")
    set_value(page, "step-0-value", "high")
    refusal = page.locator('[data-error-for="steps.0.value"]')
    refusal.wait_for()
    assert "not a number" in refusal.inner_text()
    set_value(page, "step-0-value", "{{event.properties.score}}")
    page.wait_for_function("document.querySelectorAll('.field-error').length === 0")
    assert json_view(page)["steps"] == [{"action": "set_tag", "tag": "call_score",
                                         "value": "{{event.properties.score}}"}]
    shot(page, "journey-editor-set-tag")
