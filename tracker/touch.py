"""Touch rules: which source, medium, campaign and channel brought a visit.

The one place for the lists and rules that name traffic: UTM values and how they are normalised,
click ids, search engines, social networks, payment hosts, the SMS media and the channel rules.
The collector classifies sessions with them, the webhooks match orders by them, and the reports,
the SMS link builder and the UTM hygiene view read and write values by the same rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from tracker.limits import UTM_LENGTH

NOT_SET = "(not set)"
DIRECT = "(direct)"
NONE = "(none)"
UTM_PARAMS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")

# Click ids that classify a visit when no UTM source/medium is given: param -> (source, medium).
CLICK_IDS = {
    "gclid": ("google", "cpc"),
    "gbraid": ("google", "cpc"),
    "wbraid": ("google", "cpc"),
    "dclid": ("google", "cpc"),
    "msclkid": ("bing", "cpc"),
    "fbclid": ("facebook", "paid_social"),
    "ttclid": ("tiktok", "paid_social"),
    "twclid": ("twitter", "paid_social"),
    "li_fat_id": ("linkedin", "paid_social"),
    "sccid": ("snapchat", "paid_social"),
    "epik": ("pinterest", "paid_social"),
    "yclid": ("yandex", "cpc"),
}
CAMPAIGN_PARAMS = frozenset(UTM_PARAMS) | frozenset(CLICK_IDS)

# Search engines seen as referrers: (name, host pattern). A match is `<name>/organic`.
_SEARCH_ENGINES = (
    ("google", r"(?:www\.|m\.|images\.|news\.)?google\.(?:com?\.)?[a-z]{2,3}"),
    ("bing", r"(?:www\.|cn\.)?bing\.com"),
    ("duckduckgo", r"(?:html\.|lite\.)?duckduckgo\.com"),
    ("yahoo", r"(?:[a-z]{2}\.)?search\.yahoo\.(?:co\.)?[a-z]{2,3}|yahoo\.co\.jp|search\.yahoo\.co\.jp"),
    ("baidu", r"(?:www\.|m\.)?baidu\.com"),
    ("yandex", r"(?:www\.)?(?:yandex\.(?:com\.)?[a-z]{2,3}|ya\.ru)"),
    ("ecosia", r"(?:www\.)?ecosia\.org"),
    ("startpage", r"(?:www\.)?startpage\.com"),
    ("brave", r"search\.brave\.com"),
    ("qwant", r"(?:www\.|lite\.)?qwant\.com"),
    ("naver", r"(?:search\.|m\.search\.)?naver\.com"),
    ("seznam", r"(?:www\.|search\.)?seznam\.cz"),
    ("aol", r"search\.aol\.(?:com|co\.uk)"),
    ("ask", r"(?:www\.)?ask\.com"),
    ("sogou", r"(?:www\.|m\.)?sogou\.com"),
    ("so.com", r"(?:www\.|m\.)?so\.com"),
    ("daum", r"search\.daum\.net"),
    ("kagi", r"kagi\.com"),
    ("perplexity", r"(?:www\.)?perplexity\.ai"),
)
_SEARCH_RE = [(name, re.compile(rf"^(?:{pattern})$")) for name, pattern in _SEARCH_ENGINES]
SEARCH_SOURCES = frozenset(name for name, _ in _SEARCH_ENGINES) | {
    "adwords",
    "googleads",
    "google ads",
    "google_ads",
    "microsoft",
    "msn",
    "yahoo.co.jp",
}

# Names of social networks, matched against a source's name or its host's main label.
SOCIAL_NAMES = frozenset(
    {
        "facebook",
        "fb",
        "instagram",
        "ig",
        "twitter",
        "x",
        "tiktok",
        "pinterest",
        "reddit",
        "linkedin",
        "youtube",
        "snapchat",
        "threads",
        "tumblr",
        "whatsapp",
        "messenger",
        "quora",
        "vk",
        "weibo",
        "telegram",
        "discord",
        "bsky",
        "mastodon",
        "nextdoor",
        "meta",
        "wechat",
        "line",
    }
)
SOCIAL_HOSTS = frozenset(
    {
        "t.co",
        "lnkd.in",
        "youtu.be",
        "pin.it",
        "fb.me",
        "m.me",
        "wa.me",
        "bsky.app",
        "threads.net",
        "x.com",
    }
)
WEBMAIL_HOSTS = frozenset(
    {
        "mail.google.com",
        "outlook.live.com",
        "outlook.office.com",
        "outlook.office365.com",
        "mail.yahoo.com",
        "mail.aol.com",
        "mail.proton.me",
        "webmail.gmx.net",
        "mail.yandex.ru",
    }
)
# Payment and checkout pages send shoppers back with their own referrer; they are not sources.
PAYMENT_HOSTS = frozenset(
    {
        "paypal.com",
        "paypal.me",
        "stripe.com",
        "shopify.com",
        "myshopify.com",
        "shop.app",
        "klarna.com",
        "afterpay.com",
        "clearpay.co.uk",
        "affirm.com",
        "sezzle.com",
        "zip.co",
        "pay.google.com",
        "pay.amazon.com",
        "payments.amazon.com",
        "adyen.com",
        "mollie.com",
        "checkout.com",
        "braintreegateway.com",
        "authorize.net",
        "squareup.com",
        "square.site",
        "cardinalcommerce.com",
        "arcot.com",
        "3dsecure.io",
        "paddle.com",
        "razorpay.com",
        "wepay.com",
        "2checkout.com",
        "skrill.com",
        "payu.com",
    }
)
# Android apps that open links with `android-app://<package>/` as the referrer.
APP_HOSTS = {
    "com.google.android.googlequicksearchbox": "google.com",
    "com.google.android.gm": "mail.google.com",
    "com.facebook.katana": "facebook.com",
    "com.facebook.orca": "messenger.com",
    "com.facebook.lite": "facebook.com",
    "com.instagram.android": "instagram.com",
    "com.twitter.android": "t.co",
    "com.reddit.frontpage": "reddit.com",
    "com.linkedin.android": "linkedin.com",
    "com.pinterest": "pinterest.com",
    "com.zhiliaoapp.musically": "tiktok.com",
    "com.ss.android.ugc.trill": "tiktok.com",
    "com.google.android.youtube": "youtube.com",
    "com.snapchat.android": "snapchat.com",
    "com.whatsapp": "whatsapp.com",
    "org.telegram.messenger": "telegram.org",
}

# Media that all mean "a text message" (the contract's list): the SMS channel, the link builder's
# medium and the hygiene view's synonyms.
SMS_MEDIUM = "sms"
SMS_MEDIUMS = frozenset(
    {"sms", "text", "txt", "texting", "mms", "rcs", "text-message", "text_message", "textmessage"}
)
EMAIL_WORDS = frozenset({"email", "e-mail", "e_mail", "e mail", "newsletter"})
PAID_SOCIAL_MEDIUMS = frozenset(
    {
        "paid_social",
        "paidsocial",
        "paid-social",
        "paid social",
        "social_paid",
        "social-paid",
        "social paid",
        "socialpaid",
    }
)
ORGANIC_SOCIAL_MEDIUMS = frozenset(
    {
        "social",
        "social-network",
        "social-media",
        "sm",
        "social network",
        "social media",
        "social_network",
        "social_media",
        "organic_social",
        "organic-social",
        "organic social",
    }
)
REFERRAL_MEDIUMS = frozenset({"referral", "app", "link"})
_PAID_MEDIUM_RE = re.compile(r"^(?:.*cp.*|ppc|retargeting|paid.*)$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_SPACES_RE = re.compile(r"\s+")
_SCHEME_RE = re.compile(r"[a-z][a-z0-9+.-]*:", re.IGNORECASE)
_BARE_HOST_RE = re.compile(r"(?://)?[\w-]+(?:\.[\w-]+)+(?:[/:?#]|$)")

# The channel of text messages, the one this product is about.
SMS_CHANNEL = "SMS"
CHANNELS = (
    SMS_CHANNEL,
    "Email",
    "Paid Search",
    "Organic Search",
    "Paid Social",
    "Organic Social",
    "Referral",
    "Direct",
    "Other",
)


# The dimensions of a touch, in the report's drill-down order: a report row's key.
DIMENSIONS = ("channel", "source", "medium", "campaign", "content", "term")


@dataclass(frozen=True)
class Touch:
    source: str
    medium: str
    campaign: str
    content: str
    term: str
    click_id: str | None  # 'gclid', 'fbclid', ... when a click id classified the touch
    channel: str

    @property
    def key(self) -> tuple[str, ...]:
        """The touch's values in DIMENSIONS order."""
        return (self.channel, self.source, self.medium, self.campaign, self.content, self.term)


def normalise_value(value: str | None) -> str:
    """A UTM value as reported: control characters dropped, inner whitespace collapsed to one
    space, trimmed, lower-cased, capped; NOT_SET when nothing is left."""
    if value is None:
        return NOT_SET
    value = _CONTROL_RE.sub("", _SPACES_RE.sub(" ", value)).strip().lower()[:UTM_LENGTH].strip()
    return value or NOT_SET


def campaign_params(url: str | None) -> dict[str, str]:
    """The campaign parameters of a URL (names lower-cased, values decoded once), first wins."""
    if not url:
        return {}
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return {}
    found = _params(parts.query)
    if not found and parts.fragment:
        # Hash-routed shops put the query after the '#': '/#/product?utm_source=...'.
        fragment = parts.fragment
        found = _params(fragment.split("?", 1)[1] if "?" in fragment else fragment)
    return found


def _params(query: str) -> dict[str, str]:
    found: dict[str, str] = {}
    if not query or "=" not in query:
        return found
    for name, value in parse_qsl(query, keep_blank_values=True):
        key = name.strip().lower()
        if key in CAMPAIGN_PARAMS and key not in found and value.strip():
            found[key] = value
    return found


def carries_campaign(url: str | None) -> bool:
    """Does the URL carry a campaign (a UTM or a click id)?"""
    return bool(campaign_params(url))


def campaign_signature(url: str | None) -> tuple | None:
    """The campaign a URL carries, comparable between page views; None when it carries none."""
    params = campaign_params(url)
    if not params:
        return None
    return tuple(
        sorted(
            (name, normalise_value(value) if name in UTM_PARAMS else value.strip()[:UTM_LENGTH])
            for name, value in params.items()
        )
    )


def host_of(url: str | None) -> str | None:
    """The lower-cased host of an absolute http(s) or app URL, without a leading 'www.'; a bare
    host ('www.google.com/', as some stores send their referring site) is read as https."""
    if not url:
        return None
    url = url.strip()
    if not _SCHEME_RE.match(url):
        if not _BARE_HOST_RE.match(url):
            return None
        url = "https://" + url.removeprefix("//")
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if not host:
        return None
    host = host.rstrip(".")
    if scheme in ("android-app", "ios-app"):
        return APP_HOSTS.get(host, host)
    if scheme not in ("http", "https"):
        return None
    return host[4:] if host.startswith("www.") else host


def _same_site(host: str, own: str | None) -> bool:
    if not own:
        return False
    own = own[4:] if own.startswith("www.") else own
    return host == own or host.endswith("." + own) or own.endswith("." + host)


def _is_payment(host: str) -> bool:
    if host.split(".", 1)[0] in ("checkout", "pay", "payment", "payments"):
        return True
    return any(host == h or host.endswith("." + h) for h in PAYMENT_HOSTS)


def search_engine(host: str) -> str | None:
    for name, pattern in _SEARCH_RE:
        if pattern.match(host):
            return name
    return None


def _main_label(host: str) -> str:
    """'m.facebook.com' -> 'facebook', 'pinterest.co.uk' -> 'pinterest' (no public-suffix list)."""
    labels = host.split(".")
    if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in ("co", "com", "org", "net", "ac"):
        return labels[-3]
    return labels[-2] if len(labels) >= 2 else labels[0]


def is_social(source: str) -> bool:
    if source in SOCIAL_NAMES or source in SOCIAL_HOSTS:
        return True
    return "." in source and _main_label(source) in SOCIAL_NAMES


def is_search(source: str) -> bool:
    if source in SEARCH_SOURCES:
        return True
    return "." in source and search_engine(source) is not None


def channel_for(source: str, medium: str) -> str:
    """The default channel grouping of a (source, medium) pair."""
    source = source.strip().lower()
    medium = medium.strip().lower()
    if source == DIRECT and medium in (NONE, NOT_SET):
        return "Direct"
    if medium in SMS_MEDIUMS or source == "sms":
        return SMS_CHANNEL
    if medium in EMAIL_WORDS or source in EMAIL_WORDS or source in WEBMAIL_HOSTS:
        return "Email"
    paid = bool(_PAID_MEDIUM_RE.match(medium))
    if medium in PAID_SOCIAL_MEDIUMS or (paid and is_social(source)):
        return "Paid Social"
    if paid and is_search(source):
        return "Paid Search"
    if medium in ORGANIC_SOCIAL_MEDIUMS or (is_social(source) and not paid):
        return "Organic Social"
    if medium == "organic" or (is_search(source) and not paid):
        return "Organic Search"
    if medium in REFERRAL_MEDIUMS:
        return "Referral"
    return "Other"


def referrer_source(referrer: str | None, own_hosts: tuple[str | None, ...] = ()) -> tuple[str, str] | None:
    """(source, medium) of an external referrer, or None for none, self and payment pages."""
    host = host_of(referrer)
    if not host or any(_same_site(host, own) for own in own_hosts) or _is_payment(host):
        return None
    engine = search_engine(host)
    if engine:
        return engine, "organic"
    return normalise_value(host), "referral"


def touch_from(url: str | None, referrer: str | None, site_host: str | None = None) -> Touch:
    """Classify a landing page view: UTMs, else a click id, else the referrer, else direct."""
    params = campaign_params(url)
    utm = {name: normalise_value(params.get(name)) for name in UTM_PARAMS}
    source, medium = utm["utm_source"], utm["utm_medium"]
    click_id = None
    has_utm = any(value != NOT_SET for value in utm.values())
    if source == NOT_SET and medium == NOT_SET:
        click_id = next((name for name in CLICK_IDS if name in params), None)
        if click_id:
            source, medium = CLICK_IDS[click_id]
        elif not has_utm:
            found = referrer_source(referrer, (site_host, host_of(url)))
            source, medium = found or (DIRECT, NONE)
    return Touch(
        source=source,
        medium=medium,
        campaign=utm["utm_campaign"],
        content=utm["utm_content"],
        term=utm["utm_term"],
        click_id=click_id,
        channel=channel_for(source, medium),
    )
