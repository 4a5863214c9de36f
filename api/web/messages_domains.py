"""Messages of the forms' domain fields and their suggestions, in English and Chinese.

Kept apart from ``api.web.messages`` (the pages' other messages); ``api.web.i18n`` reads both.
"""

from __future__ import annotations

MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "form.domains_help": "Optional: choose one or more, or leave them empty and the fields "
        "are inferred from your title and description. On a computer hold Ctrl (⌘ on a Mac) to "
        "select several.",
        "form.suggest": "Suggest fields from my text",
        "form.suggested": "Suggested from what you wrote; the likeliest are selected above, "
        "change them as you like:",
        "form.suggestion": "{code} {path} ({percent}% likely)",
        "form.suggest_no_text": "Write a title or a description first: the suggestions are read "
        "from them.",
    },
    "zh": {
        "form.domains_help": "选填：可选择一项或多项，也可留空，系统将根据标题和描述推断技术领域。"
        "在电脑上按住 Ctrl（Mac 上按 ⌘）可多选。",
        "form.suggest": "根据内容推荐领域",
        "form.suggested": "根据您填写的内容推荐，可能性最高的已在上方选中，可自行修改：",
        "form.suggestion": "{code} {path}（可能性 {percent}%）",
        "form.suggest_no_text": "请先填写标题或描述：推荐依据这些内容。",
    },
}
