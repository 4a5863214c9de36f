"""E-mail to the people who submitted a need or a technology: what became of it.

An enterprise hears when its need is passed to brokers, when a broker takes it up (the
broker's name and how to reach them) and at each later stage of the deal; an institute hears
about deals on its technology the same way. Each message is written to the ``notifications``
outbox in the transaction of the event it reports, with a ``send_email`` job: a rolled-back
event sends nothing, a crash loses no message, and an event is reported once (its key). Off
while no SMTP host is set (``MATCHER_SMTP_HOST``): then nothing is written. The recipient is the
e-mail address in the record's contact field; a record without one hears nothing.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.orm import Session

from matcher.domain import Side
from matcher.jobs.queue import enqueue, settings
from matcher.store.repo import notifications

_ADDRESS = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")

STAGE_NAMES = {
    "en": {
        "claimed": "claimed by a broker",
        "contacted": "contacted",
        "nda_signed": "NDA signed",
        "negotiating": "negotiating",
        "agreed": "agreed",
        "closed_lost": "closed without agreement",
    },
    "zh": {
        "claimed": "经纪人已认领",
        "contacted": "已联系",
        "nda_signed": "已签署保密协议",
        "negotiating": "洽谈中",
        "agreed": "已达成协议",
        "closed_lost": "未达成协议，已关闭",
    },
}
KIND = {
    "en": {"needs": "need", "technologies": "technology"},
    "zh": {"needs": "需求", "technologies": "技术成果"},
}
MESSAGES = {
    "en": {
        "routed.subject": "Your need {ref} has been passed to technology brokers",
        "routed.body": (
            'Your need "{title}" ({ref}) has been matched with {count} technologies and passed '
            "to certified technology brokers. You will hear from us when a broker takes it up."
        ),
        "claimed.subject": "A technology broker has taken up your {kind} {ref}",
        "claimed.body": (
            "{broker}, a certified technology broker (certificate {certificate}), has taken up "
            'your {kind} "{title}" ({ref}) and will be in touch. Reach them at: {reach}.'
        ),
        "stage.subject": "Your {kind} {ref}: {stage}",
        "stage.body": (
            'The deal on your {kind} "{title}" ({ref}), handled by {broker}, is now: {stage}.'
        ),
        "footer": (
            "Follow it, edit it or withdraw it through the tracking link you received when you "
            "submitted it.\n\n-- TechMatch"
        ),
        "no_email": "through TechMatch (no e-mail address on record)",
    },
    "zh": {
        "routed.subject": "您的需求 {ref} 已转交技术经纪人",
        "routed.body": (
            "您的需求“{title}”（{ref}）已匹配到 {count} 项技术，并已转交持证技术经纪人。"
            "经纪人认领后我们会再通知您。"
        ),
        "claimed.subject": "技术经纪人已认领您的{kind} {ref}",
        "claimed.body": (
            "持证技术经纪人{broker}（证书编号 {certificate}）已认领您的{kind}“{title}”（{ref}），"
            "将与您联系。联系方式：{reach}。"
        ),
        "stage.subject": "您的{kind} {ref}：{stage}",
        "stage.body": "由{broker}负责的您的{kind}“{title}”（{ref}）的对接进展：{stage}。",
        "footer": "您可以通过提交时收到的跟踪链接查看、修改或撤回。\n\n-- TechMatch",
        "no_email": "请通过 TechMatch 联系（未登记电子邮箱）",
    },
}


def address(contact: str | None) -> str | None:
    """The e-mail address in a contact field (``Li Wei <li@example.cn>, 021-…``), or None."""
    found = _ADDRESS.search(contact or "")
    return found.group(0) if found else None


def _language(row: Any) -> str:
    """The language a record's submitter is written to in (English when we have no messages)."""
    return row.language if row.language in MESSAGES else "en"


def _queue(session: Session, side: Side, row: Any, event: str, key: str, **values: Any) -> bool:
    """Write one message about ``row`` and its job, unless mail is off, the record has no
    address, or this event was reported already; whether one was written."""
    to = address(getattr(row, "contact", None))
    if not settings().smtp_host or to is None:
        return False
    lang = _language(row)
    text = MESSAGES[lang]
    fields = {"title": row.title, "ref": row.ref, "kind": KIND[lang][side.value], **values}
    if "stage" in fields:
        fields["stage"] = STAGE_NAMES[lang].get(fields["stage"], fields["stage"])
    template = "stage" if event not in ("routed", "claimed") else event
    made = notifications.add(
        session,
        key=key,
        side=side.value,
        record_id=row.id,
        event=event,
        recipient=to,
        subject=text[f"{template}.subject"].format(**fields),
        body=text[f"{template}.body"].format(**fields) + "\n\n" + text["footer"],
    )
    if made is not None:
        enqueue(session, "send_email", {"notification": made}, key=f"mail:{made}")
    return made is not None


def routed(session: Session, need: Any, count: int) -> bool:
    """The need was passed to brokers (reported the first time only)."""
    return _queue(session, Side.needs, need, "routed", f"need:{need.id}:routed", count=count)


def deal_moved(session: Session, deal: Any, stage: str, broker: Any, records: list[Any]) -> int:
    """A deal was claimed or moved to ``stage``: its need's and its technology's submitters
    hear of it (``records``: the need row, then the technology row); how many messages."""
    made = 0
    for side, row in zip((Side.needs, Side.technologies), records, strict=True):
        if row is None:
            continue
        lang = _language(row)
        values = {
            "broker": broker.name,
            "certificate": broker.certificate_no,
            "reach": broker.email or MESSAGES[lang]["no_email"],
            "stage": stage,
        }
        event = "claimed" if stage == "claimed" else stage
        key = f"deal:{deal.id}:{side.value}:{stage}"
        made += _queue(session, side, row, event, key, **values)
    return made
