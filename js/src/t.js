// The tracking snippet: page views, single-page-app navigation and identify, sent to /collect.
//
//   <script defer src="https://COLLECTOR/t.js" data-site="SITE"></script>
//
// Optional attributes on the tag: data-api="https://COLLECTOR/" (the collector's base URL,
// ending in a slash; default: where this file was loaded from), data-respect-dnt (send nothing when the browser asks
// for Do-Not-Track or Global Privacy Control) and data-consent="required" (store and send nothing until the page
// calls tracker.consent(true); tracker.consent(false) forgets the stored id).
// A browser sending Global Privacy Control is counted anonymously: no stored id, no identify, no cart attribute.
// Exposes window.tracker = {visitor(), identify(emailOrPhone), pageview(), consent(yes)}.
// Budget: 880 bytes gzipped once minified, now 902 with consent and GPC (tests/collect/test_snippet.py);
// count every byte.
(function () {
  var w = window, d = document, n = navigator, tag = d.currentScript;
  // No tag to read settings from (a very old browser) or loaded twice: do nothing.
  if (!tag || w.tracker) return;

  var KEY = '_tracker_vid';
  var data = tag.dataset;
  var api = new URL('collect', data.api || tag.src);
  // Robots and browser automation, or a person who asked not to be tracked where the site
  // honours it: the API still exists so the page's own calls keep working, but nothing is sent.
  var anon = n.globalPrivacyControl;
  var off = !data.site || n.webdriver || ('respectDnt' in data && (n.doNotTrack == '1' || anon));
  // Consent required and not given yet (an id is stored only once it was given).
  var wait = data.consent == 'required' && !stored();
  var id, last;
  begin();

  // The visitor's id, stored or new (128 random bits as digits); none when nothing may be stored.
  function begin() {
    id = off || anon || wait ? '' : keep(stored() || crypto.getRandomValues(new Uint32Array(4)).join(''));
  }

  function stored() {
    var v;
    try { v = localStorage[KEY]; } catch (e) {}
    return v || (d.cookie.match(KEY + '=(\\w+)') || [])[1];
  }

  // A first-party id kept in localStorage, or in a cookie where storage is blocked; '' forgets it.
  function keep(v) {
    try {
      v ? localStorage[KEY] = v : delete localStorage[KEY];
      if (v) return v;
    } catch (e) {}
    d.cookie = KEY + '=' + v + ';path=/;samesite=lax;max-age=' + (v ? 63072000 : 0);
    return v;
  }

  function here() { return location.href.split('#')[0]; }

  // A string body goes as text/plain (for sendBeacon and fetch alike): a cross-origin request
  // without a CORS preflight.
  function send(body) {
    if (off || wait) return;
    body.site = data.site;
    // Without an id the collector counts the visit with a daily-rotating anonymous visitor.
    id ? body.visitor = id : body.anonymous = true;
    body.url = here();
    body = JSON.stringify(body);
    n.sendBeacon(api, body) || fetch(api, {method: 'POST', body: body, keepalive: true});
  }

  // Counts the current URL (fragment dropped) unless it is the last one counted; `force` is 1 (or
  // true) only for an explicit tracker.pageview() or a page back from the cache (other listeners
  // pass their event).
  function pageview(force) {
    var url = here();
    // A prerendered page is counted when the person actually opens it (prerenderingchange).
    if (d.prerendering || url == last && force != 1) return;
    send({event: 'pageview', referrer: last || d.referrer, title: d.title, width: screen.width});
    last = url;
  }

  w.tracker = {
    visitor: function () { return id; },
    identify: function (value) {
      var body = {event: 'identify'};
      body[/@/.test(value) ? 'email' : 'phone'] = '' + value;
      value && id && send(body);
    },
    pageview: function () { pageview(1); },
    // A consent banner's answer: yes counts this page (once) and from now on; no forgets the id.
    consent: function (yes) {
      if (yes) {
        if (wait) {
          wait = 0;
          begin();
          pageview(1);
        }
      } else {
        keep(id = '');
        wait = 1;
      }
    }
  };
  if (off) return;

  var push = history.pushState;
  history.pushState = function () {
    push.apply(this, arguments);
    pageview();
  };
  w.addEventListener('popstate', pageview);
  d.addEventListener('prerenderingchange', pageview);
  // Back to a page kept in the back/forward cache: the script does not run again, yet it is a visit
  // (`persisted` true counts as a forced 1; false, on the first load, is a repeat of the URL).
  w.addEventListener('pageshow', function (e) { pageview(e.persisted); });
  pageview();

  // Shopify storefronts: the visitor id rides on the cart into the order's note_attributes.
  // Once per browser session, not on every page.
  try {
    if (id && w.Shopify && sessionStorage[KEY] != id) {
      sessionStorage[KEY] = id;
      fetch('/cart/update.js', {method: 'POST', body: new URLSearchParams('attributes[' + KEY + ']=' + id)});
    }
  } catch (e) {}
})();
