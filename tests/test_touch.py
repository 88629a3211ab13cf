"""Touch classification tables: UTMs, click ids, referrers and channels as stores really send them."""

import pytest

from reports.naming import build_link, clean_value, fingerprint
from tracker.touch import (
    Touch,
    campaign_signature,
    channel_for,
    normalise_value,
    touch_from,
)

NS = "(not set)"
SHOP = "shop.example"


def t(source, medium, campaign=NS, content=NS, term=NS, click_id=None, channel="Other"):
    return Touch(source, medium, campaign, content, term, click_id, channel)


@pytest.mark.parametrize(
    ("url", "referrer", "expected"),
    [
        # SMS platforms' real link shapes
        (
            "https://shop.example/?utm_source=attentive&utm_medium=sms&utm_campaign=welcome-series"
            "&utm_content=msg1&utm_term=20off",
            None,
            t("attentive", "sms", "welcome-series", "msg1", "20off", channel="SMS"),
        ),
        (
            "https://shop.example/collections/sale?utm_source=postscript&utm_medium=SMS"
            "&utm_campaign=Black+Friday+2026&ps_cid=123",
            "",
            t("postscript", "sms", "black friday 2026", channel="SMS"),
        ),
        (
            "https://shop.example/products/tee?_kx=abc.123&utm_source=Klaviyo&utm_medium=text"
            "&utm_campaign=Flash%20Sale%20(Nov)&utm_term=%20Hoodies%20",
            "https://www.google.com/",
            t("klaviyo", "text", "flash sale (nov)", term="hoodies", channel="SMS"),
        ),
        (
            "https://shop.example/?utm_source=ATTENTIVE&utm_medium=MMS",
            None,
            t("attentive", "mms", channel="SMS"),
        ),
        # decoded once only: %2520 stays %20, %252B stays %2B
        (
            "https://shop.example/?utm_source=attentive&utm_medium=sms&utm_campaign=spring%2520sale",
            None,
            t("attentive", "sms", "spring%20sale", channel="SMS"),
        ),
        (
            "https://shop.example/?utm_source=a%252Bb&utm_medium=sms&utm_campaign=x%2By",
            None,
            t("a%2bb", "sms", "x+y", channel="SMS"),
        ),
        # empty and whitespace-only values are not set
        (
            "https://shop.example/?utm_source=attentive&utm_medium=sms&utm_campaign=&utm_content=%20%20",
            None,
            t("attentive", "sms", channel="SMS"),
        ),
        # parameter names in any case; the first occurrence wins
        (
            "https://shop.example/?UTM_Source=Attentive&Utm_Medium=Sms&utm_source=other",
            None,
            t("attentive", "sms", channel="SMS"),
        ),
        # relative landing paths as Shopify's landing_site
        (
            "/?utm_source=postscript&utm_medium=sms&utm_campaign=vip",
            None,
            t("postscript", "sms", "vip", channel="SMS"),
        ),
        (
            "/products/x?utm_source=newsletter&utm_medium=email",
            None,
            t("newsletter", "email", channel="Email"),
        ),
        # a source without a medium still uses the UTMs
        ("https://shop.example/?utm_source=attentive", "https://www.google.com/", t("attentive", NS)),
        ("https://shop.example/?utm_campaign=spring", None, t(NS, NS, "spring")),
        # hash-routed pages
        (
            "https://shop.example/#/p?utm_source=attentive&utm_medium=sms",
            None,
            t("attentive", "sms", channel="SMS"),
        ),
        # click ids
        (
            "https://shop.example/?gclid=Cj0KCQ",
            None,
            t("google", "cpc", click_id="gclid", channel="Paid Search"),
        ),
        (
            "https://shop.example/?msclkid=abc",
            None,
            t("bing", "cpc", click_id="msclkid", channel="Paid Search"),
        ),
        (
            "https://shop.example/?fbclid=IwAR0",
            "https://l.facebook.com/",
            t("facebook", "paid_social", click_id="fbclid", channel="Paid Social"),
        ),
        (
            "https://shop.example/?ttclid=E.C.P",
            None,
            t("tiktok", "paid_social", click_id="ttclid", channel="Paid Social"),
        ),
        (
            "https://shop.example/?gclid=abc&utm_campaign=Brand",
            None,
            t("google", "cpc", "brand", click_id="gclid", channel="Paid Search"),
        ),
        ("https://shop.example/?gclid=", None, t("(direct)", "(none)", channel="Direct")),
        # UTMs beat click ids
        (
            "https://shop.example/?utm_source=attentive&utm_medium=sms&gclid=x",
            None,
            t("attentive", "sms", channel="SMS"),
        ),
        # search engines
        (
            "https://shop.example/",
            "https://www.google.com/",
            t("google", "organic", channel="Organic Search"),
        ),
        (
            "https://shop.example/",
            "https://www.google.co.uk/",
            t("google", "organic", channel="Organic Search"),
        ),
        (
            "https://shop.example/",
            "https://google.com.au/search?q=x",
            t("google", "organic", channel="Organic Search"),
        ),
        (
            "https://shop.example/",
            "https://www.bing.com/search?q=x",
            t("bing", "organic", channel="Organic Search"),
        ),
        (
            "https://shop.example/",
            "https://duckduckgo.com/",
            t("duckduckgo", "organic", channel="Organic Search"),
        ),
        (
            "https://shop.example/",
            "https://search.yahoo.com/",
            t("yahoo", "organic", channel="Organic Search"),
        ),
        (
            "https://shop.example/",
            "https://www.baidu.com/link?url=x",
            t("baidu", "organic", channel="Organic Search"),
        ),
        ("https://shop.example/", "https://yandex.ru/", t("yandex", "organic", channel="Organic Search")),
        (
            "https://shop.example/",
            "https://www.ecosia.org/",
            t("ecosia", "organic", channel="Organic Search"),
        ),
        (
            "https://shop.example/",
            "https://search.brave.com/",
            t("brave", "organic", channel="Organic Search"),
        ),
        (
            "https://shop.example/",
            "android-app://com.google.android.googlequicksearchbox/",
            t("google", "organic", channel="Organic Search"),
        ),
        # social hosts are referrals in the Organic Social channel
        (
            "https://shop.example/",
            "https://m.facebook.com/",
            t("m.facebook.com", "referral", channel="Organic Social"),
        ),
        (
            "https://shop.example/",
            "https://l.instagram.com/",
            t("l.instagram.com", "referral", channel="Organic Social"),
        ),
        ("https://shop.example/", "https://t.co/abc", t("t.co", "referral", channel="Organic Social")),
        (
            "https://shop.example/",
            "https://www.tiktok.com/",
            t("tiktok.com", "referral", channel="Organic Social"),
        ),
        (
            "https://shop.example/",
            "https://www.pinterest.co.uk/",
            t("pinterest.co.uk", "referral", channel="Organic Social"),
        ),
        (
            "https://shop.example/",
            "https://out.reddit.com/",
            t("out.reddit.com", "referral", channel="Organic Social"),
        ),
        (
            "https://shop.example/",
            "https://www.linkedin.com/",
            t("linkedin.com", "referral", channel="Organic Social"),
        ),
        (
            "https://shop.example/",
            "https://www.youtube.com/",
            t("youtube.com", "referral", channel="Organic Social"),
        ),
        (
            "https://shop.example/",
            "android-app://com.facebook.katana/",
            t("facebook.com", "referral", channel="Organic Social"),
        ),
        ("https://shop.example/", "android-app://com.slack/", t("com.slack", "referral", channel="Referral")),
        # plain referrals lose their www.
        (
            "https://shop.example/",
            "https://www.Blog.Example.org/post",
            t("blog.example.org", "referral", channel="Referral"),
        ),
        (
            "https://shop.example/",
            "https://mail.google.com/",
            t("mail.google.com", "referral", channel="Email"),
        ),
        # the site's own host and payment pages are not referrers
        (
            "https://shop.example/thanks",
            "https://shop.example/cart",
            t("(direct)", "(none)", channel="Direct"),
        ),
        ("https://www.shop.example/", "https://shop.example/", t("(direct)", "(none)", channel="Direct")),
        (
            "https://shop.example/",
            "https://checkout.shopify.com/123/checkouts/x",
            t("(direct)", "(none)", channel="Direct"),
        ),
        (
            "https://shop.example/",
            "https://www.paypal.com/checkoutnow",
            t("(direct)", "(none)", channel="Direct"),
        ),
        (
            "https://shop.example/",
            "https://checkout.stripe.com/c/pay/cs_x",
            t("(direct)", "(none)", channel="Direct"),
        ),
        ("https://shop.example/", "https://shop-x.myshopify.com/", t("(direct)", "(none)", channel="Direct")),
        ("/thanks", "https://shop.example/cart", t("(direct)", "(none)", channel="Direct")),
        # nothing at all, and junk
        ("https://shop.example/", None, t("(direct)", "(none)", channel="Direct")),
        ("https://shop.example/", "", t("(direct)", "(none)", channel="Direct")),
        ("https://shop.example/", "about:blank", t("(direct)", "(none)", channel="Direct")),
        ("https://shop.example/", "not a url", t("(direct)", "(none)", channel="Direct")),
        (None, None, t("(direct)", "(none)", channel="Direct")),
        ("https://[bad/", "https://[bad/", t("(direct)", "(none)", channel="Direct")),
    ],
)
def test_touch_from(url, referrer, expected):
    assert touch_from(url, referrer, SHOP) == expected


def test_own_host_of_another_shop_is_a_referrer():
    assert touch_from("https://shop.example/", "https://other.example/", SHOP).source == "other.example"


def test_own_host_without_site_host_falls_back_to_the_page_host():
    assert touch_from("https://a.example/x", "https://a.example/y").channel == "Direct"


def test_values_are_capped_and_cleaned():
    touch = touch_from("https://s.example/?utm_source=" + "A" * 300 + "&utm_medium=s%00ms", None)
    assert touch.source == "a" * 255
    assert touch.medium == "sms"


@pytest.mark.parametrize(
    ("source", "medium", "channel"),
    [
        ("attentive", "sms", "SMS"),
        ("postscript", "Text", "SMS"),
        ("sms", NS, "SMS"),
        ("klaviyo", "email", "Email"),
        ("newsletter", NS, "Email"),
        ("google", "cpc", "Paid Search"),
        ("bing", "ppc", "Paid Search"),
        ("adwords", "paid", "Paid Search"),
        ("facebook", "cpc", "Paid Social"),
        ("instagram", "paid_social", "Paid Social"),
        ("anything", "paid-social", "Paid Social"),
        ("google", "organic", "Organic Search"),
        ("duckduckgo", NS, "Organic Search"),
        ("facebook", "social", "Organic Social"),
        ("tiktok", NS, "Organic Social"),
        ("partner", "social", "Organic Social"),
        ("blog.example", "referral", "Referral"),
        ("(direct)", "(none)", "Direct"),
        ("partner", "affiliate", "Other"),
        ("partner", "cpc", "Other"),
        (NS, NS, "Other"),
    ],
)
def test_channel_for(source, medium, channel):
    assert channel_for(source, medium) == channel


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (
            "https://s.example/?utm_source=a&utm_medium=sms",
            "https://s.example/p?utm_medium=SMS&utm_source=A",
            True,
        ),
        (
            "https://s.example/?utm_source=a&utm_medium=sms",
            "https://s.example/?utm_source=b&utm_medium=sms",
            False,
        ),
        ("https://s.example/?utm_source=a", "https://s.example/?utm_source=a&utm_campaign=x", False),
        ("https://s.example/?gclid=1", "https://s.example/?gclid=2", False),
        ("https://s.example/?gclid=1&q=x", "https://s.example/other?gclid=1", True),
    ],
)
def test_campaign_signature_compares_campaigns(a, b, same):
    assert (campaign_signature(a) == campaign_signature(b)) is same


@pytest.mark.parametrize(
    "url",
    [
        None,
        "",
        "https://s.example/",
        "https://s.example/?q=shoes",
        "https://s.example/?utm_source=",
        "/x?gclid=",
    ],
)
def test_campaign_signature_none_without_campaign(url):
    assert campaign_signature(url) is None


@pytest.mark.parametrize(
    ("raw", "value"),
    [(None, NS), ("", NS), ("  ", NS), (" Attentive ", "attentive"), ("a\x00b\tc", "ab c"),
     ("Fall  Drop", "fall drop")],
)
def test_normalise_value(raw, value):
    assert normalise_value(raw) == value


@pytest.mark.parametrize("medium", ["sms", "SMS", "txt", "texting", "text", "mms", "rcs", "text-message",
                                    "text_message", "textmessage"])
def test_every_text_message_medium_is_sms_in_the_report_and_the_hygiene_view(medium):
    assert channel_for("attentive", medium) == "SMS"
    assert fingerprint(medium, "medium") == fingerprint("sms", "medium")


def test_inner_spaces_do_not_split_a_campaign_between_report_and_link_builder():
    assert normalise_value("Fall  Drop ") == normalise_value("fall drop") == clean_value("fall\tdrop")
    assert "utm_campaign=fall+drop" in build_link("https://shop.example/", "attentive", "Fall  Drop")
