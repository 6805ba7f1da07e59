/* EduPulse browser tracker. Served by the EduPulse server at /static/edupulse.js; see docs/sdk.md.
 *
 *   <script src="https://edupulse.example.com/static/edupulse.js"></script>
 *   <script>edupulse.init({writeKey: "wk_..."});</script>
 *
 * Keeps an anonymous id in a first-party cookie, records page views with the utm_* parameters of the landing
 * page, queues records in memory (and in localStorage, so a navigation does not lose them), sends them in
 * batches with fetch and, when the page is hidden or unloaded, with navigator.sendBeacon. Every record carries an
 * event_id, so a batch sent twice is stored once.
 *
 * Experiments: edupulse.assign("experiment-key").then(function (variant) { ... }) reads the running experiments
 * (the GrowthBook payload at /api/features/{write key}, once per page) and assigns with GrowthBook's hashing
 * (FNV-1a 32-bit, hash version 2, bucket ranges), so the variant equals what the official GrowthBook SDKs and the
 * server give; it records one $experiment_exposure per experiment and unit. */
(function (window, document) {
  "use strict";
  if (window.edupulse && window.edupulse.version) { return; }
  var UTM = ["utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term"];
  var script = document.currentScript;
  var state = {
    options: null, queue: [], timer: null, sending: false, failures: 0,
    anonymousId: null, loginId: null, utm: {}
  };

  function uuid() {
    if (window.crypto && window.crypto.randomUUID) { return window.crypto.randomUUID(); }
    return "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx".replace(/[xy]/g, function (c) {
      var r = Math.random() * 16 | 0;
      return (c === "x" ? r : (r & 0x3 | 0x8)).toString(16);
    });
  }
  function readCookie(name) {
    var parts = document.cookie ? document.cookie.split("; ") : [];
    for (var i = 0; i < parts.length; i++) {
      var eq = parts[i].indexOf("=");
      if (parts[i].slice(0, eq) === name) { return decodeURIComponent(parts[i].slice(eq + 1)); }
    }
    return null;
  }
  function writeCookie(name, value, days) {
    var o = state.options;
    var cookie = name + "=" + encodeURIComponent(value) + "; path=/; SameSite=Lax; max-age=" + (days * 86400);
    if (o.cookieDomain) { cookie += "; domain=" + o.cookieDomain; }
    if (window.location.protocol === "https:") { cookie += "; Secure"; }
    document.cookie = cookie;
  }
  function storage(kind) {
    try { var s = window[kind]; s.setItem("ep_probe", "1"); s.removeItem("ep_probe"); return s; } catch (e) { return null; }
  }
  function now() { return new Date().toISOString(); }
  function assign(target) {
    for (var i = 1; i < arguments.length; i++) {
      var source = arguments[i] || {};
      for (var key in source) { if (Object.prototype.hasOwnProperty.call(source, key)) { target[key] = source[key]; } }
    }
    return target;
  }

  function when(record, options) {
    // A record's own time and id, e.g. for records kept while offline: {time: ISO 8601, event_id: "..."}.
    if (options && options.time) { record.time = options.time; }
    if (options && options.event_id) { record.event_id = options.event_id; }
    return record;
  }
  function who(record) {
    if (state.loginId) {
      record.distinct_id = state.loginId;
      record.distinct_id_type = "login_id";
    } else {
      record.distinct_id = state.anonymousId;
    }
    return record;
  }
  function enqueue(record) {
    if (!state.options) { throw new Error("edupulse.init({writeKey: ...}) must be called first"); }
    record.event_id = record.event_id || uuid();
    record.time = record.time || now();
    if (state.queue.length >= state.options.maxQueue) {
      state.dropped += 1;  // counted, see edupulse.stats()
      return false;
    }
    state.queue.push(record);
    save();
    if (state.queue.length >= state.options.batchSize) { flush(); } else { schedule(state.options.flushInterval); }
    return true;
  }
  function save() {
    var s = storage("localStorage");
    if (s) { try { s.setItem("ep_queue", JSON.stringify(state.queue)); } catch (e) { /* full: memory only */ } }
  }
  function schedule(delay) {
    if (state.timer === null) { state.timer = window.setTimeout(function () { state.timer = null; flush(); }, delay); }
  }
  function endpoint() {
    return state.options.host + "/api/v1/ingest/beacon?key=" + encodeURIComponent(state.options.writeKey);
  }

  function flush() {
    if (state.sending || state.queue.length === 0) { return; }
    var batch = state.queue.slice(0, state.options.batchSize);
    state.sending = true;
    var done = function (ok) {
      state.sending = false;
      if (ok) {
        state.queue.splice(0, batch.length);
        state.sent += batch.length;
        state.failures = 0;
        save();
        if (state.queue.length) { schedule(0); }
      } else {
        // Retried with backoff; the event_id of each record makes a repeated batch harmless.
        state.failures += 1;
        schedule(Math.min(30000, 500 * Math.pow(2, state.failures)));
      }
    };
    window.fetch(endpoint(), {
      method: "POST", body: JSON.stringify({batch: batch}), keepalive: true,
      headers: {"Content-Type": "text/plain"}
    }).then(function (response) {
      // 4xx other than 429 will not get better by retrying: drop the batch (the server quarantines bad records).
      done(response.ok || (response.status >= 400 && response.status < 500 && response.status !== 429));
    }, function () { done(false); });
  }
  function beacon() {
    if (!state.queue.length || !navigator.sendBeacon) { return; }
    var body = JSON.stringify({batch: state.queue});
    if (navigator.sendBeacon(endpoint(), new Blob([body], {type: "text/plain"}))) {
      state.sent += state.queue.length;
      state.queue = [];
      save();
    }
  }

  function captureUtm() {
    var params = new URLSearchParams(window.location.search);
    var found = {};
    UTM.forEach(function (name) { if (params.get(name)) { found[name] = params.get(name); } });
    var session = storage("sessionStorage");
    if (Object.keys(found).length) {
      if (session) { session.setItem("ep_utm", JSON.stringify(found)); }
      return found;
    }
    try { return JSON.parse((session && session.getItem("ep_utm")) || "{}"); } catch (e) { return {}; }
  }

  // experiments ------------------------------------------------------------------------------------------
  function fnv32(text) {
    var h = 0x811c9dc5;
    for (var i = 0; i < text.length; i++) { h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0; }
    return h >>> 0;
  }
  function gbHash(seed, value, version) {
    if (version === 2) { return (fnv32(String(fnv32(seed + value))) % 10000) / 10000; }
    if (version === 1) { return (fnv32(value + seed) % 1000) / 1000; }
    return null;
  }
  function bucketRanges(count, coverage, weights) {
    coverage = Math.min(Math.max(coverage === undefined ? 1 : coverage, 0), 1);
    var equal = [], i, total = 0;
    for (i = 0; i < count; i++) { equal.push(1 / count); }
    if (!weights || weights.length !== count) { weights = equal; }
    for (i = 0; i < weights.length; i++) { total += weights[i]; }
    if (total < 0.99 || total > 1.01) { weights = equal; }
    var start = 0, ranges = [];
    for (i = 0; i < weights.length; i++) { ranges.push([start, start + coverage * weights[i]]); start += weights[i]; }
    return ranges;
  }
  // Values compare as GrowthBook's Python SDK and the EduPulse server compare them: equality is ===, and only
  // two numbers or two strings are ordered ("70" is not below 90).
  function kindOf(v) { return v === null || v === undefined ? "null" : Array.isArray(v) ? "array" : typeof v; }
  function same(a, b) { var k = kindOf(a); return k === kindOf(b) && k !== "array" && k !== "object" && a === b; }
  function operator(op, actual, expected, groups) {
    var i;
    if (op === "$eq") { return same(actual, expected); }
    if (op === "$ne") { return !same(actual, expected); }
    if (op === "$in" || op === "$nin") {
      if (!Array.isArray(expected)) { return false; }
      var values = Array.isArray(actual) ? actual : [actual];
      var inside = values.some(function (v) { return expected.some(function (e) { return same(v, e); }); });
      return op === "$in" ? inside : !inside;
    }
    if (op === "$exists") { return (actual !== undefined && actual !== null) === !!expected; }
    if (op === "$inGroup") {
      return actual !== undefined && actual !== null && (groups[expected] || []).some(function (m) { return same(actual, m); });
    }
    if (op === "$elemMatch") {
      if (!Array.isArray(actual)) { return false; }
      for (i = 0; i < actual.length; i++) { if (valueMatches(actual[i], expected, groups)) { return true; } }
      return false;
    }
    var kinds = kindOf(actual) + "/" + kindOf(expected);
    if (kinds !== "number/number" && kinds !== "string/string") { return false; }
    return op === "$gt" ? actual > expected : op === "$gte" ? actual >= expected : op === "$lt" ? actual < expected
      : op === "$lte" ? actual <= expected : false;
  }
  function valueMatches(actual, condition, groups) {
    if (condition && typeof condition === "object" && !Array.isArray(condition)) {
      var keys = Object.keys(condition);
      if (keys.length && keys.every(function (k) { return k.charAt(0) === "$"; })) {
        return keys.every(function (k) { return operator(k, actual, condition[k], groups); });
      }
    }
    return same(actual, condition);
  }
  function conditionMatches(attributes, condition, groups) {
    for (var key in condition) {
      if (!Object.prototype.hasOwnProperty.call(condition, key)) { continue; }
      if (key === "$and") {
        for (var i = 0; i < condition[key].length; i++) {
          if (!conditionMatches(attributes, condition[key][i], groups)) { return false; }
        }
      } else if (!valueMatches(attributes[key], condition[key], groups)) { return false; }
    }
    return true;
  }
  function chooseVariant(payload, key, attributes) {
    var feature = (payload.features || {})[key];
    if (!feature || !feature.rules || !feature.rules.length) { return null; }
    var rule = feature.rules[0];
    if (!conditionMatches(attributes, rule.condition || {}, payload.savedGroups || {})) { return null; }
    var value = attributes[rule.hashAttribute || "id"];
    if (value === undefined || value === null || value === "") { return null; }
    value = String(value);
    if (rule.namespace) {
      var spot = gbHash("__" + rule.namespace[0], value, 1);
      if (spot === null || spot < rule.namespace[1] || spot >= rule.namespace[2]) { return null; }
    }
    var n = gbHash(rule.seed || key, value, rule.hashVersion || 1);
    if (n === null) { return null; }
    var ranges = bucketRanges(rule.variations.length, rule.coverage, rule.weights);
    for (var i = 0; i < ranges.length; i++) {
      if (n >= ranges[i][0] && n < ranges[i][1]) { return {variant: String(rule.variations[i]), rule: rule, unit: value}; }
    }
    return null;
  }
  function features() {
    if (!state.features) {
      state.features = window.fetch(state.options.host + "/api/features/" + encodeURIComponent(state.options.writeKey),
        {credentials: "omit"}).then(function (r) { return r.ok ? r.json() : {features: {}}; },
        function () { return {features: {}}; });
    }
    return state.features;
  }

  var api = {
    version: "1",
    /** Start: options writeKey (required), host (default: where this script came from), autoPageview (true),
     *  batchSize (20), flushInterval (ms, 1000), maxQueue (1000), cookieDomain, anonymousId (an id the page
     *  already has for this browser, e.g. the app's device id in a WebView; it replaces the cookie's). */
    init: function (options) {
      var origin = script && script.src ? new URL(script.src).origin : window.location.origin;
      state.options = assign({host: origin, autoPageview: true, batchSize: 20, flushInterval: 1000, maxQueue: 1000},
        options);
      state.options.host = state.options.host.replace(/\/$/, "");
      state.sent = 0;
      state.dropped = 0;
      state.anonymousId = state.options.anonymousId || readCookie("ep_aid") || uuid();
      writeCookie("ep_aid", state.anonymousId, 730);
      state.loginId = readCookie("ep_lid");
      state.utm = captureUtm();
      var s = storage("localStorage");
      try { state.queue = JSON.parse((s && s.getItem("ep_queue")) || "[]"); } catch (e) { state.queue = []; }
      window.addEventListener("pagehide", beacon);
      document.addEventListener("visibilitychange", function () {
        if (document.visibilityState === "hidden") { beacon(); }
      });
      if (state.options.autoPageview) { api.page(); }
      if (state.queue.length) { schedule(0); }
      return api;
    },
    /** A page_view with url, path, title, referrer and the utm_* of the landing page. */
    page: function (properties, options) {
      return api.track("page_view", assign({
        url: window.location.href, path: window.location.pathname, title: document.title,
        referrer: document.referrer || null
      }, properties), options);
    },
    /** options (here and below): {time, event_id} to give a record its own time or id. */
    track: function (event, properties, options) {
      return enqueue(when(who({type: "track", event: event, properties: assign({}, state.utm, properties)}), options));
    },
    /** After sign-in: links the anonymous id to the login id; later records use the login id. */
    identify: function (loginId, traits, options) {
      loginId = String(loginId);
      state.loginId = loginId;
      writeCookie("ep_lid", loginId, 730);
      enqueue(when({type: "identify", distinct_id: loginId, anonymous_id: state.anonymousId}, options));
      if (traits) { api.setProfile(traits, options && options.time ? {time: options.time} : null); }
      return true;
    },
    setProfile: function (properties, options) {
      return enqueue(when(who({type: "profile_set", properties: properties}), options));
    },
    setProfileOnce: function (properties, options) {
      return enqueue(when(who({type: "profile_set_once", properties: properties}), options));
    },
    /** Sign-out: forget the login id and start a new anonymous id. */
    reset: function () {
      state.loginId = null;
      writeCookie("ep_lid", "", -1);
      state.anonymousId = uuid();
      writeCookie("ep_aid", state.anonymousId, 730);
    },
    flush: flush,
    /** The variant of this browser's person (or of attributes.id / the class or school in attributes) in a
     *  running experiment: a Promise of the variant key, or null. attributes: what the targeting reads (person
     *  properties). An exposure is recorded once per experiment and unit unless options.track is false. */
    assign: function (experiment, attributes, options) {
      var attrs = assign({id: state.loginId || state.anonymousId}, attributes);
      return features().then(function (payload) {
        var found = chooseVariant(payload, experiment, attrs);
        if (!found) { return null; }
        var seen = storage("sessionStorage"), mark = "ep_x_" + experiment + "_" + found.unit;
        if (!(options && options.track === false) && !(seen && seen.getItem(mark))) {
          if (seen) { seen.setItem(mark, found.variant); }
          var record = who({type: "track", event: "$experiment_exposure",
            properties: {experiment: experiment, variant: found.variant}});
          if ((found.rule.hashAttribute || "id") !== "id") {
            record.groups = {};
            record.groups[found.rule.hashAttribute] = found.unit;
          }
          enqueue(record);
        }
        return found.variant;
      });
    },
    /** GrowthBook's hash, for tests and for apps that assign on their own: a number in [0, 1). */
    hash: gbHash,
    anonymousId: function () { return state.anonymousId; },
    stats: function () { return {queued: state.queue.length, sent: state.sent, dropped: state.dropped}; }
  };
  window.edupulse = api;
})(window, document);
