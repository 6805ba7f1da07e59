"""The xAPI document resources through clients nobody here wrote: Rustici's `tincan` (PyPI) for State, Activity
Profile and Agent Profile documents, and ADL's community library `@xapi/xapi` (npm) in Debian's Chromium on a page
of another origin (statements, State with ETags, both profiles, Agents and Activities)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from compat_support import StaticSite, browser_page, chromium_or_skip
from xapi_conformance import LRS, lrs

__all__ = ["lrs"]

pytest.importorskip("tincan")
from tincan import Activity, Agent, AgentAccount, RemoteLRS
from tincan.documents import ActivityProfileDocument, AgentProfileDocument, StateDocument


@pytest.fixture
def remote(lrs: LRS) -> RemoteLRS:
    return RemoteLRS(endpoint=f"{lrs.root}/xapi/", version="1.0.1", username=lrs.keys.write_key,
                     password=lrs.keys.api_key)


def learner() -> Agent:
    return Agent(name="Li Lei", account=AgentAccount(home_page="https://lms.example.com", name=uuid.uuid4().hex))


def test_tincan_state(remote: RemoteLRS) -> None:
    lesson = Activity(id=f"https://school.example.com/lesson/{uuid.uuid4().hex}")
    who = learner()
    registration = str(uuid.uuid4())
    bookmark = StateDocument(id="bookmark", activity=lesson, agent=who, content='{"page": 12}',
                             content_type="application/json")
    assert remote.save_state(bookmark).success
    suspend = StateDocument(id="suspend_data", activity=lesson, agent=who, content="cmi.suspend_data=3/12;\r\n\t{x}",
                            content_type="text/plain; charset=utf-8")
    assert remote.save_state(suspend).success  # any content, kept byte for byte
    got = remote.retrieve_state(lesson, who, "bookmark")
    assert got.success
    assert json.loads(got.content.content) == {"page": 12}
    kept = remote.retrieve_state(lesson, who, "suspend_data").content.content
    assert kept.decode() == "cmi.suspend_data=3/12;\r\n\t{x}"
    ids = remote.retrieve_state_ids(lesson, who)
    assert ids.success
    assert sorted(ids.content) == ["bookmark", "suspend_data"]
    other = remote.retrieve_state_ids(lesson, who, registration=registration)
    assert other.success
    assert other.content == []
    assert remote.delete_state(bookmark).success
    assert remote.retrieve_state(lesson, who, "bookmark").response.status == 404
    assert remote.clear_state(lesson, who).success
    assert remote.retrieve_state_ids(lesson, who).content == []


def test_tincan_profiles(remote: RemoteLRS) -> None:
    course = Activity(id=f"https://school.example.com/course/{uuid.uuid4().hex}")
    settings = ActivityProfileDocument(id="settings", activity=course, content='{"passing": 60}',
                                       content_type="application/json")
    assert remote.save_activity_profile(settings).success
    again = remote.save_activity_profile(settings)  # no ETag: the document exists, so the LRS refuses (409)
    assert not again.success
    assert again.response.status == 409
    current = remote.retrieve_activity_profile(course, "settings")
    assert json.loads(current.content.content) == {"passing": 60}
    settings.etag = current.response.getheader("ETag")
    settings.content = '{"passing": 70}'
    assert remote.save_activity_profile(settings).success  # with If-Match
    assert remote.retrieve_activity_profile_ids(course).content == ["settings"]
    assert remote.delete_activity_profile(settings).response.status == 412  # the ETag it holds is stale now
    settings.etag = remote.retrieve_activity_profile(course, "settings").response.getheader("ETag")
    assert remote.delete_activity_profile(settings).success

    who = learner()
    preferences = AgentProfileDocument(id="preferences", agent=who, content='{"language": "zh-CN"}',
                                       content_type="application/json")
    assert remote.save_agent_profile(preferences).success
    back = remote.retrieve_agent_profile(who, "preferences")
    assert json.loads(back.content.content) == {"language": "zh-CN"}
    assert remote.retrieve_agent_profile_ids(who).content == ["preferences"]
    assert remote.delete_agent_profile(preferences).success


# --- @xapi/xapi in Chromium ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        yield pw


PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Fractions</title>
<script src="/@xapi/xapi/dist/XAPI.umd.js"></script></head><body><script>
(async () => {
  const log = [];
  try {
    const auth = XAPI.toBasicAuth('%(user)s', '%(password)s');
    const xapi = new XAPI({endpoint: '%(endpoint)s', auth: auth});
    const actor = {objectType: 'Agent', name: '韩梅梅', mbox: 'mailto:%(who)s@example.com'};
    const activityId = 'https://school.example.com/lesson/%(who)s';
    const sent = await xapi.sendStatement({statement: {actor: actor,
      verb: {id: 'http://adlnet.gov/expapi/verbs/experienced', display: {'en-US': 'experienced'}},
      object: {id: activityId, definition: {name: {'zh-CN': '分数'}}}}});
    log.push(['statement', sent.status, sent.data.length]);
    const params = {agent: actor, activityId: activityId, stateId: 'bookmark'};
    log.push(['setState', (await xapi.setState({...params, state: {page: 1}})).status]);
    log.push(['createState', (await xapi.createState({...params, state: {score: 5}})).status]);
    const state = await xapi.getState(params);
    log.push(['getState', state.status, state.data, /^"[0-9a-f]{40}"$/.test(state.headers.etag)]);
    log.push(['getStates', (await xapi.getStates({agent: actor, activityId: activityId})).data]);
    const profile = {activityId: activityId, profileId: 'settings'};
    log.push(['createActivityProfile', (await xapi.createActivityProfile({...profile, profile: {a: 1}})).status]);
    const current = await xapi.getActivityProfile(profile);
    log.push(['setActivityProfile', (await xapi.setActivityProfile({...profile, profile: {a: 2},
      etag: current.headers.etag, matchHeader: 'If-Match'})).status]);
    log.push(['getActivityProfile', (await xapi.getActivityProfile(profile)).data]);
    log.push(['createAgentProfile', (await xapi.createAgentProfile({agent: actor, profileId: 'prefs',
      profile: {lang: 'zh-CN'}})).status]);
    log.push(['getAgentProfiles', (await xapi.getAgentProfiles({agent: actor})).data]);
    log.push(['getAgent', (await xapi.getAgent({agent: actor})).data]);
    log.push(['getActivity', (await xapi.getActivity({activityId: activityId})).data]);
    log.push(['deleteState', (await xapi.deleteState(params)).status]);
  } catch (error) {
    log.push(['error', String(error), error.response ? JSON.stringify(error.response.data) : '']);
  }
  window.log = log;
  window.done = true;
})();
</script></body></html>"""


def test_xapi_js_in_chromium(lrs: LRS, playwright: Any) -> None:
    who = uuid.uuid4().hex[:10]
    html = PAGE % {"user": lrs.keys.write_key, "password": lrs.keys.api_key, "endpoint": f"{lrs.root}/xapi/",
                   "who": who}
    site = StaticSite({"/index.html": html})
    browser, page = browser_page(playwright)
    try:
        page.goto(f"{site.origin}/index.html")
        page.wait_for_function("window.done === true", timeout=30_000)
        log = {entry[0]: entry[1:] for entry in page.evaluate("window.log")}
    finally:
        browser.close()
        site.close()
    assert "error" not in log, log["error"]
    assert log["statement"] == [200, 1]
    assert log["setState"] == [204]
    assert log["createState"] == [204]
    assert log["getState"] == [200, {"page": 1, "score": 5}, True]
    assert log["getStates"] == [["bookmark"]]
    assert log["createActivityProfile"] == [204]
    assert log["setActivityProfile"] == [204]
    assert log["getActivityProfile"] == [{"a": 2}]
    assert log["createAgentProfile"] == [204]
    assert log["getAgentProfiles"] == [["prefs"]]
    assert log["getAgent"] == [{"objectType": "Person", "name": ["韩梅梅"], "mbox": [f"mailto:{who}@example.com"]}]
    assert log["getActivity"][0]["definition"] == {"name": {"zh-CN": "分数"}}
    assert log["deleteState"] == [204]
