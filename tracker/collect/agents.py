"""User agents: device, browser and OS through `user_agents`, fed by ua-parser's native parser, cached."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import ua_parser
from user_agents.parsers import UserAgent, parse_browser, parse_device, parse_operating_system

# Distinct user agents kept parsed per process; real traffic has a long tail but a fat head.
CACHE_SIZE = 8192

# Automation, headless browsers, HTTP libraries and link-preview fetchers that ua-parser
# does not file under its 'Spider' device family.
_AUTOMATION_RE = re.compile(
    r"headless|phantomjs|puppeteer|playwright|selenium|webdriver|lighthouse|pagespeed|"
    r"\bbot\b|bot/|crawl|spider|slurp|preview|facebookexternalhit|python-|python/|curl/|wget/|"
    r"httpclient|okhttp|go-http-client|axios/|node-fetch|undici|java/|libwww|scrapy|"
    r"\bhttpie|postmanruntime|insomnia|apache-httpclient|guzzle|aiohttp|httpx|electron/|"
    r"cypress|nightmare|zombie\.js|jsdom|prerender|rendertron|screenshot",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Agent:
    is_bot: bool
    device_type: str | None  # 'mobile', 'tablet', 'desktop', 'bot' or 'other'
    browser: str | None
    os: str | None


class _FastUserAgent(UserAgent):
    """A `user_agents.UserAgent` built from ua-parser's native (Rust) resolver, not its regex loop."""

    def __init__(self, user_agent_string: str):
        result = ua_parser.parse(user_agent_string).with_defaults()
        ua, os_, device = result.user_agent, result.os, result.device
        self.ua_string = user_agent_string
        self.browser = parse_browser(ua.family, ua.major, ua.minor, ua.patch, ua.patch_minor)
        self.os = parse_operating_system(os_.family, os_.major, os_.minor, os_.patch, os_.patch_minor)
        self.device = parse_device(device.family, device.brand, device.model)


@lru_cache(maxsize=CACHE_SIZE)
def parse_agent(user_agent: str) -> Agent:
    """Classify a User-Agent header (already capped to USER_AGENT_LENGTH)."""
    if not user_agent.strip():
        return Agent(True, None, None, None)
    ua = _FastUserAgent(user_agent)
    if ua.is_bot or _AUTOMATION_RE.search(user_agent):
        return Agent(True, "bot", ua.browser.family[:64], ua.os.family[:64])
    if ua.is_tablet:
        device = "tablet"
    elif ua.is_mobile:
        device = "mobile"
    elif ua.is_pc:
        device = "desktop"
    else:
        device = "other"
    return Agent(False, device, ua.browser.family[:64], ua.os.family[:64])
