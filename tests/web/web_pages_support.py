"""What the browser tests of the web UI share (the one Chromium of the run is a fixture of web_site.py):
signed-in tabs in both languages, screenshots, the crawl of every page of the UI, and the translation checker
that reads what a page shows and finds words of the other language or raw message keys.

The checker's rule: in Chinese a visible string may hold Latin words only when they are user data (names of
events and properties without a display name, property values, e-mail addresses... which the pages mark
`translate="no"` or register in `EP.userStrings`), proper nouns (PROPER), or words that a message keeps the
same in both languages (a command, "API", "CSV"); in English, likewise for Chinese characters. A raw message
key (`builder.run`) is untranslated in both."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from edupulse.web.i18n import catalogue

SHOTS = Path(__file__).parents[2] / "test-screenshots"

# Names that are the same in every language.
PROPER = {"EduPulse", "CSV", "PNG", "JSON", "API", "SQL", "LTV", "ROI", "CAC", "UTM", "URL", "ID", "CRM", "SCRM",
          "WeChat", "WeCom", "B2B", "SaaS", "iOS", "OpenAPI", "UTC", "OK", "PII", "xAPI", "LMS",
          # statistical methods named after their authors, written the same in Chinese texts
          "CUPED", "Holm", "Benjamini", "Hochberg"}
LATIN = re.compile(r"[A-Za-z][A-Za-z'’]+")
HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
KEY = re.compile(r"^[a-z_]+\.[a-z_]+(\.[a-z_.]+)?$")


def signed_in_tab(browser: Any, url: str, who: tuple[str, str], lang: str) -> Any:
    """A new context and tab in `lang` (from the browser's language), signed in through the sign-in page;
    JavaScript errors of its pages are collected in tab.errors."""
    context = browser.new_context(locale="zh-CN" if lang == "zh" else "en-US", viewport={"width": 1440, "height": 900},
                                  accept_downloads=True, timezone_id="Europe/Berlin")
    tab = context.new_page()
    tab.set_default_timeout(30_000)
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.errors = errors
    tab.goto(url + "/login")
    tab.fill("input[name=email]", who[0])
    tab.fill("input[name=password]", who[1])
    tab.click("button[type=submit]")
    tab.wait_for_url(url + "/")
    return tab


def shot(tab: Any, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    tab.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def wait_ready(tab: Any) -> None:
    """Until the page's controller has drawn its first data (body[data-ready])."""
    tab.wait_for_function("document.body && document.body.dataset.ready === '1'")


# the translation checker ---------------------------------------------------------------------------

VISIBLE_TEXT = """() => {
  const shown = (node) => {
    if (!node) return false;
    const style = getComputedStyle(node);
    return style.display !== "none" && style.visibility !== "hidden" && node.getClientRects().length > 0;
  };
  const skip = (node) => node.closest("[translate=no], script, style, code, pre, noscript");
  const out = [document.title];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const text = n.textContent.trim();
    const parent = n.parentElement;
    if (!text || !parent || skip(parent)) continue;
    const select = parent.closest("select");
    if (select ? shown(select) : shown(parent)) out.push(text);
  }
  for (const node of document.querySelectorAll("[placeholder], [title], optgroup[label]")) {
    const host = node.closest("select") || node;
    if (skip(node) || !shown(host)) continue;
    for (const attr of ["placeholder", "title", "label"])
      if (node.getAttribute(attr) && node.tagName !== "OPTION") out.push(node.getAttribute(attr));
  }
  for (const node of document.querySelectorAll("input[type=submit], input[type=button]"))
    if (shown(node)) out.push(node.value);
  const charts = [];
  if (window.echarts) for (const node of document.querySelectorAll("[_echarts_instance_]")) {
    const chart = echarts.getInstanceByDom(node);
    if (!chart || !shown(node)) continue;
    const option = chart.getOption();
    for (const s of option.series || []) {
      if (s.name) charts.push(String(s.name));
      if (s.type === "sankey" && s.label && typeof s.label.formatter === "function")
        for (const d of s.data || []) charts.push(String(s.label.formatter({ name: d.name, data: d })));
    }
    for (const axis of [...(option.xAxis || []), ...(option.yAxis || [])]) {
      if (axis.name) charts.push(String(axis.name));
      for (const d of axis.data || []) charts.push(String(typeof d === "object" && d ? d.value : d));
    }
  }
  return { texts: out, charts: charts, user: window.EP ? [...window.EP.userStrings] : [] };
}"""


@dataclass
class Words:
    """What may appear in a page of one language besides that language's own script."""

    lang: str
    allowed: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, lang: str) -> Words:
        english, chinese = catalogue("en"), catalogue("zh")
        allowed: set[str] = set(PROPER)
        for key, en_text in english.items():
            zh_text = chinese.get(key, "")
            if lang == "zh":  # Latin words a message keeps in both languages (commands, API, CSV...)
                allowed |= set(LATIN.findall(zh_text)) & set(LATIN.findall(en_text))
            else:  # Chinese words a message keeps in both (the language switch, 统计口径...)
                allowed |= set(HAN.findall(en_text))
        return cls(lang, allowed)

    def untranslated(self, text: str, user: set[str]) -> str | None:
        """The part of a visible string that is not in this language, or None."""
        stripped = text.strip()
        if KEY.match(stripped) and stripped not in user:
            return stripped  # a message key shown instead of its words
        rest = stripped
        for data in sorted((u for u in user if len(u) >= 2 or u == stripped), key=len, reverse=True):
            if data in rest:
                rest = rest.replace(data, " ")
        if "@" in rest:  # e-mail addresses are user data
            rest = re.sub(r"\S+@\S+", " ", rest)
        foreign = LATIN.findall(rest) if self.lang == "zh" else HAN.findall(rest)
        wrong = [w for w in foreign if w not in self.allowed]
        return " ".join(wrong) if wrong else None


def untranslated_on(tab: Any, words: Words) -> list[str]:
    """Every visible string of the tab's page (and its charts' legends and axes) not in the page's language."""
    found = tab.evaluate(VISIBLE_TEXT)
    user = set(found["user"])
    problems = []
    for text in [*found["texts"], *found["charts"]]:
        wrong = words.untranslated(text, user)
        if wrong:
            problems.append(f"{text!r} ({wrong})")
    return sorted(set(problems))


# the crawl -----------------------------------------------------------------------------------------


def template_of(path: str, templates: list[str]) -> str | None:
    """The page route (`/people/{person_id}`) a path belongs to."""
    parts = path.rstrip("/").split("/") if path != "/" else [""]
    for template in templates:
        pattern = template.rstrip("/").split("/") if template != "/" else [""]
        if len(pattern) == len(parts) and all(p.startswith("{") or p == q for p, q in zip(pattern, parts, strict=True)):
            return template
    return None


def crawl_key(url: str) -> str:
    """Pages visited once per kind: numbers and tokens in a path are one page (/people/12 = /people/13), words
    are different pages (/analysis/trends, /analysis/funnel); query strings are left out."""
    path = urlsplit(url).path
    parts = ["*" if re.fullmatch(r"\d+|[A-Za-z0-9_-]{20,}", p) else p for p in path.split("/")]
    return "/".join(parts)


def page_links(tab: Any, base: str) -> list[str]:
    hrefs = tab.evaluate("() => [...document.querySelectorAll('a[href]')].map((a) => a.getAttribute('href'))")
    out = []
    for href in hrefs:
        if not href or not href.startswith("/") or href.startswith("//"):
            continue
        path = urlsplit(href).path
        if path.startswith(("/static/", "/lang/", "/docs", "/api/", "/redoc", "/openapi")):
            continue
        out.append(base + href.split("#")[0])
    return out


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=1)
