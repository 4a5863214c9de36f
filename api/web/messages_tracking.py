"""Messages of the tracking page's broker contact, edit and withdraw, in English and Chinese.

Kept apart from ``api.web.messages`` (the pages' other messages); ``api.web.i18n`` reads all.
"""

from __future__ import annotations

MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "track.broker": "Your broker",
        "track.broker_help": "{name}, a certified technology broker, is working on it. "
        "Reach them at",
        "track.edit": "Edit your submission",
        "track.withdraw": "Withdraw your submission",
        "track.withdraw_help": "Withdrawn submissions are no longer matched or passed to brokers.",
        "track.withdraw_confirm": "Yes, withdraw it",
        "track.withdrawn": "Your submission has been withdrawn.",
        "track.saved": "Your changes have been saved; it will be matched again.",
        "track.closed": "A withdrawn or closed submission can no longer be changed.",
    },
    "zh": {
        "track.broker": "您的技术经纪人",
        "track.broker_help": "持证技术经纪人{name}正在跟进。联系方式：",
        "track.edit": "修改提交内容",
        "track.withdraw": "撤回提交",
        "track.withdraw_help": "撤回后将不再匹配，也不再转交技术经纪人。",
        "track.withdraw_confirm": "确认撤回",
        "track.withdrawn": "您的提交已撤回。",
        "track.saved": "修改已保存，将重新匹配。",
        "track.closed": "已撤回或已关闭的提交不能再修改。",
    },
}
