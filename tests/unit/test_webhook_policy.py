"""Where a webhook may point (matcher.webhook_policy), as a table; offline: IP literals,
localhost, a name that cannot resolve, and a stand-in resolver for names."""

from __future__ import annotations

import ipaddress

import pytest

from matcher import webhook_policy
from matcher.errors import InvalidInputError
from matcher.webhook_policy import UnresolvableHostError, address_problem, check_webhook_url

PUBLIC = "93.184.215.14"
OK, NO = True, False

# (url, development, allowed, part of the refusal's message)
CASES = [
    (f"https://{PUBLIC}/hook", False, OK, ""),
    (f"https://{PUBLIC}:8443/hook?x=1", False, OK, ""),
    ("https://[2606:4700:4700::1111]/hook", False, OK, ""),
    (f"http://{PUBLIC}/hook", False, NO, "https://"),
    (f"http://{PUBLIC}/hook", True, NO, "https://"),
    ("ftp://example.org/hook", True, NO, "https://"),
    ("https:///hook", False, NO, "absolute"),
    (f"https://user:pw@{PUBLIC}/", False, NO, "credentials"),
    (f"https://{PUBLIC}:99999/", False, NO, "port"),
    # the server's own network, whatever the environment
    ("https://10.0.0.5/", True, NO, "private"),
    ("http://10.0.0.5/", True, NO, "private"),
    ("https://192.168.1.1/", False, NO, "private"),
    ("https://172.16.0.1/", False, NO, "private"),
    ("https://169.254.169.254/latest/meta-data/", True, NO, "link-local"),
    ("https://[fe80::1]/", False, NO, "link-local"),
    ("https://224.0.0.1/", False, NO, "multicast"),
    ("https://[ff02::1]/", False, NO, "multicast"),
    ("https://240.0.0.1/", False, NO, "reserved"),
    ("https://0.0.0.0/", True, NO, "unspecified"),
    ("https://[::]/", False, NO, "unspecified"),
    ("https://100.64.0.1/", False, NO, "globally reachable"),
    ("https://[::ffff:10.0.0.1]/", False, NO, "private"),
    ("https://[fd00::1]/", False, NO, "private"),
    # loopback: only in development, where http is allowed for it alone
    ("https://127.0.0.1/", False, NO, "loopback"),
    ("https://[::1]/", False, NO, "loopback"),
    ("http://127.0.0.1:8080/hook", False, NO, "https://"),
    ("http://127.0.0.1:8080/hook", True, OK, ""),
    ("https://127.0.0.1:8080/hook", True, OK, ""),
    ("http://[::1]:8080/hook", True, OK, ""),
    ("http://localhost:8080/hook", True, OK, ""),
    ("https://localhost/hook", False, NO, "loopback"),
    ("https://2130706433/", False, NO, "loopback"),  # 127.0.0.1 written as a number
    # a name that does not resolve
    ("https://no-such-host.invalid/hook", True, NO, "does not resolve"),
]


@pytest.mark.parametrize(("url", "development", "allowed", "reason"), CASES)
def test_webhook_url_table(url: str, development: bool, allowed: bool, reason: str) -> None:
    if allowed:
        check_webhook_url(url, development=development)
        return
    with pytest.raises(InvalidInputError) as refused:
        check_webhook_url(url, development=development)
    assert reason in str(refused.value)
    assert str(refused.value).startswith("webhook URL: ")


def test_a_name_is_judged_by_every_address_it_resolves_to(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = {
        "hooks.example.org": [PUBLIC],
        "split.example.org": [PUBLIC, "10.1.2.3"],  # one inside is enough to refuse
        "metadata.example.org": ["169.254.169.254"],
    }
    monkeypatch.setattr(
        webhook_policy,
        "resolve",
        lambda host, port: [ipaddress.ip_address(a) for a in answers[host]],
    )
    check_webhook_url("https://hooks.example.org/hook", development=False)
    with pytest.raises(InvalidInputError, match=r"split\.example\.org \(10\.1\.2\.3\) is a priv"):
        check_webhook_url("https://split.example.org/hook", development=False)
    with pytest.raises(InvalidInputError, match="link-local"):
        check_webhook_url("https://metadata.example.org/hook", development=True)


def test_unresolvable_is_its_own_kind() -> None:
    with pytest.raises(UnresolvableHostError):
        webhook_policy.resolve("no-such-host.invalid", 443)
    assert webhook_policy.resolve("10.0.0.5", 443) == [ipaddress.ip_address("10.0.0.5")]


@pytest.mark.parametrize(
    ("address", "allow_loopback", "problem"),
    [
        (PUBLIC, False, None),
        ("127.0.0.1", True, None),
        ("127.0.0.1", False, "a loopback address"),
        ("::ffff:127.0.0.1", True, None),
        ("2002:0a00:0001::", False, "a private address"),  # 6to4 of 10.0.0.1
        ("192.0.2.1", False, "a private address"),  # documentation range
    ],
)
def test_address_problem(address: str, allow_loopback: bool, problem: str | None) -> None:
    assert address_problem(ipaddress.ip_address(address), allow_loopback=allow_loopback) == problem
