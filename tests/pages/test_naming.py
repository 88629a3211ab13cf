"""The SMS naming convention: links and split spellings."""

from urllib.parse import parse_qs, urlsplit

import pytest

from reports.naming import LinkError, build_link, conflicts, find_splits, fingerprint


@pytest.mark.parametrize(
    "a,b,dimension",
    [
        ("Black Friday", "black-friday", "campaign"),
        ("black_friday", "black-friday", "campaign"),
        ("BLACK FRIDAY", "blackfriday", "campaign"),
        ("text", "sms", "medium"),
        ("SMS", "mms", "medium"),
        ("Text Message", "sms", "medium"),
    ],
)
def test_same_meaning_same_fingerprint(a, b, dimension):
    assert fingerprint(a, dimension) == fingerprint(b, dimension)


def test_different_campaigns_stay_apart():
    assert fingerprint("winback", "campaign") != fingerprint("welcome", "campaign")
    assert fingerprint("text", "campaign") != fingerprint("sms", "campaign")


def test_find_splits_lists_spellings_most_used_first():
    splits = find_splits({
        "campaign": [("black-friday", 120), ("black_friday", 7), ("black friday", 3), ("welcome", 50)],
        "medium": [("sms", 300), ("text", 12), ("email", 80), ("(none)", 500)],
        "source": [("attentive", 10)],
    })
    by_dim = {s.dimension: s for s in splits}
    assert set(by_dim) == {"campaign", "medium"}
    assert by_dim["campaign"].spellings == (("black-friday", 120), ("black_friday", 7), ("black friday", 3))
    assert by_dim["campaign"].suggested == "black-friday"
    assert by_dim["medium"].spellings == (("sms", 300), ("text", 12))


def test_conflicts_warn_about_another_spelling_only():
    known = {"campaign": [("black-friday", 120), ("welcome", 4)], "medium": [("text", 9)]}
    warnings = conflicts({"campaign": "Black Friday", "medium": "sms", "source": "attentive"}, known)
    assert [(w["dimension"], w["existing"]) for w in warnings] == [
        ("campaign", [("black-friday", 120)]),
        ("medium", [("text", 9)]),
    ]
    assert conflicts({"campaign": "black-friday"}, known) == []


def test_build_link_follows_the_convention_and_keeps_other_parameters():
    link = build_link("https://shop.example/sale?ref=1&utm_source=old", " Attentive ", "Black-Friday",
                      content="20off", term="")
    query = parse_qs(urlsplit(link).query)
    assert query == {"ref": ["1"], "utm_source": ["attentive"], "utm_medium": ["sms"],
                     "utm_campaign": ["black-friday"], "utm_content": ["20off"]}
    assert link.startswith("https://shop.example/sale?")


@pytest.mark.parametrize(
    "url,source,campaign,message",
    [
        ("javascript:alert(1)", "attentive", "x", "full web address"),
        ("shop.example/sale", "attentive", "x", "full web address"),
        ("https://shop.example/", "", "x", "SMS platform"),
        ("https://shop.example/", "attentive", " ", "campaign"),
    ],
)
def test_build_link_refuses_bad_input(url, source, campaign, message):
    with pytest.raises(LinkError, match=message):
        build_link(url, source, campaign)
