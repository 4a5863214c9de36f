"""A small dict-based message catalogue for the HTML forms (English and Chinese).

``t(lang, key, **params)`` looks a message up and fills ``{placeholders}``; an unknown key
falls back to English, then to the key itself. ``translate_error`` turns the English messages
of :func:`matcher.ingest.validate_record` into friendly, translated ones.
"""

from __future__ import annotations

import re
from typing import Any

from matcher.phrases import DEFAULT_LANGUAGE, LANGUAGES

__all__ = ["DEFAULT_LANGUAGE", "LANGUAGES", "MESSAGES", "normalise", "t", "translate_error"]

MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        # layout
        "site.name": "TechMatch",
        "site.tagline": "Technology transfer matchmaking",
        "nav.need": "Post a need",
        "nav.technology": "Offer a technology",
        "lang.switch": "Language",
        "lang.en": "English",
        "lang.zh": "中文",
        "footer.text": "TechMatch links enterprise needs to research results. "
        "Certified technology brokers follow up every match.",
        "footer.privacy": "We never publish your contact details.",
        "skip": "Skip to main content",
        # common form text
        "form.required": "required",
        "form.optional": "optional",
        "form.required_note": "Fields marked * are required.",
        "form.errors_title": "Please correct the {count} highlighted field(s).",
        "form.error_prefix": "Error:",
        "form.no_account": "No account needed. After you submit you get a private link "
        "to follow the progress.",
        "form.choose": "— choose —",
        "form.none": "— none —",
        "form.multi_help": "Pick one or more. On a computer hold Ctrl (⌘ on a Mac) to select "
        "several.",
        "form.whole_field": "{name} (whole field)",
        "form.confidential": "Confidential",
        "form.confidential_help": "Only certified brokers see the details; the record is "
        "never listed publicly.",
        "form.chars_max": "At most {max} characters.",
        # TRL
        "trl.levels_title": "What do the readiness levels mean?",
        "trl.option": "TRL {trl} — {name}",
        "trl.level": "TRL {trl}",
        # regions
        "region.countries": "Countries and territories",
        "region.subdivisions": "{country}: provinces and states",
        # need form
        "need.page_title": "Post a technology need",
        "need.intro": "Describe the technical problem your company wants to solve. We match "
        "it against research results from universities and institutes and pass the best "
        "matches to a certified technology broker.",
        "need.section.company": "Your company",
        "need.section.need": "The need",
        "need.section.readiness": "Readiness (TRL)",
        "need.section.region": "Where to look",
        "need.section.budget": "Budget and timing",
        "need.section.contact": "Contact and privacy",
        "need.enterprise": "Company name",
        "need.enterprise_help": "The legal name of your company.",
        "need.title": "Title of the need",
        "need.title_help": "One line, 5–300 characters, e.g. “Corrosion-resistant coating for "
        "offshore wind towers”.",
        "need.description": "Description",
        "need.description_help": "The technical problem, constraints and the performance you "
        "need (20–20,000 characters).",
        "need.domains": "Technology fields",
        "need.trl_min": "Lowest readiness you can absorb",
        "need.trl_min_help": "The least mature technology your team could still take on.",
        "need.trl_max": "Highest readiness wanted",
        "need.trl_max_help": "Optional: set it if you want to co-develop something early.",
        "need.trl_hard": "Only show technologies inside this readiness window",
        "need.region_scope": "Search scope",
        "need.scope.local": "Local",
        "need.scope.local_help": "Your own province or state, or its economic region (e.g. "
        "the Yangtze River Delta).",
        "need.scope.national": "National",
        "need.scope.national_help": "Anywhere in your country.",
        "need.scope.international": "International",
        "need.scope.international_help": "Anywhere in the world; nearer partners still "
        "rank a little higher.",
        "need.home_region": "Where your company is",
        "need.home_region_help": "Country, or province/state where listed.",
        "need.region_hard": "Only show technologies inside this scope",
        "need.budget_min": "Budget from",
        "need.budget_max": "Budget up to",
        "need.budget_help": "Optional. Amounts such as 500000, in the currency given by its "
        "three-letter code (CNY, EUR, USD …).",
        "need.currency": "Currency",
        "need.currency_help": "Three-letter code, e.g. CNY, EUR, USD.",
        "need.deadline": "Deadline",
        "need.deadline_help": "Optional: by when you need a solution.",
        "need.contact": "Contact person",
        "need.contact_help": "Name and e-mail address, so the broker can reach you.",
        "need.submit": "Submit need",
        "need.done_title": "Your need has been received",
        "need.done_intro": "Thank you. We are matching your need against the technologies "
        "on file; the best matches go to a certified technology broker.",
        # technology form
        "tech.page_title": "Offer a technology",
        "tech.intro": "Describe a research result, patent or technology your institute wants "
        "to transfer. We match it against enterprise needs and pass promising matches to a "
        "certified technology broker.",
        "tech.section.owner": "Your institute",
        "tech.section.technology": "The technology",
        "tech.section.readiness": "Readiness (TRL)",
        "tech.section.ip": "Intellectual property and licensing",
        "tech.section.privacy": "Privacy",
        "tech.owner": "University or institute",
        "tech.owner_help": "Who owns the technology.",
        "tech.title": "Title of the technology",
        "tech.title_help": "One line, 5–300 characters.",
        "tech.description": "Description",
        "tech.description_help": "What it is, what it does, advantages and applications "
        "(20–20,000 characters).",
        "tech.domains": "Technology fields",
        "tech.keywords": "Keywords",
        "tech.keywords_help": "Optional, separated by semicolons, e.g. coating; corrosion; "
        "offshore.",
        "tech.trl": "Readiness level",
        "tech.trl_help": "How mature the technology is today.",
        "tech.region": "Where the institute is",
        "tech.region_help": "Country, or province/state where listed.",
        "tech.ip_status": "Patent status",
        "tech.ip.granted": "Granted patent(s)",
        "tech.ip.pending": "Patent application pending",
        "tech.ip.none": "No patent",
        "tech.ip.trade_secret": "Trade secret / know-how",
        "tech.patents": "Patent numbers",
        "tech.patents_help": "Optional, separated by semicolons, e.g. CN114123456B; EP3456789B1.",
        "tech.licensing": "Preferred form of transfer",
        "tech.lic.exclusive_licence": "Exclusive licence",
        "tech.lic.non_exclusive_licence": "Non-exclusive licence",
        "tech.lic.assignment": "Assignment (sale of the rights)",
        "tech.lic.co_development": "Co-development",
        "tech.lic.open": "Open (free to use)",
        "tech.submit": "Submit technology",
        "tech.done_title": "Your technology has been received",
        "tech.done_intro": "Thank you. We are matching your technology against enterprise "
        "needs; promising matches go to a certified technology broker.",
        # confirmation
        "done.reference": "Reference:",
        "done.link_title": "Your private tracking link",
        "done.link_help": "Keep this link: it is the only way to follow the progress, and "
        "anyone who has it can see the status (but never your contact details).",
        "done.open": "Open the status page",
        # tracking
        "track.page_title": "Status",
        "track.title": "Title",
        "track.submitted": "Submitted",
        "track.status": "Status",
        "track.kind.need": "Technology need",
        "track.kind.technology": "Technology offer",
        "track.steps": "Progress",
        "status.received": "Received",
        "status.received_help": "We have your submission and are looking for matches.",
        "status.matched": "Matched",
        "status.matched_help.need": "{count} technologies found.",
        "status.matched_help.technology": "{count} enterprise needs found.",
        "status.claimed": "With a broker",
        "status.claimed_help": "A certified technology broker is working on a match and "
        "will contact you.",
        "status.negotiating": "In negotiation",
        "status.negotiating_help": "The parties are negotiating terms.",
        "status.agreed": "Agreed",
        "status.agreed_help": "An agreement has been reached.",
        "status.closed": "Closed",
        "status.closed_help": "The match did not lead to an agreement.",
        "status.archived": "Closed",
        "status.archived_help": "This record has been archived.",
        # errors pages
        "error.title": "Something went wrong",
        "error.back": "Back to the form",
        "error.home": "Post a need",
        "csrf.title": "Your form session expired",
        "csrf.message": "The security token of the form was missing or invalid (for example "
        "because the page was open too long or cookies are blocked). Please go back, reload "
        "the form and submit it again.",
        "notfound.title": "Page not found",
        "notfound.track": "No submission belongs to this tracking link. Check that you "
        "copied the whole link.",
        "toolarge.title": "Submission too large",
        "toolarge.message": "The form data is larger than we accept. Please shorten the "
        "description and try again.",
        # validation messages
        "err.required": "This field is required.",
        "err.min_length": "Please enter at least {n} characters.",
        "err.max_length": "Please enter at most {n} characters (you entered {got}).",
        "err.max_length_plain": "Please enter at most {n} characters.",
        "err.int": "Please choose a whole number.",
        "err.number": "Please enter a number, e.g. 500000.",
        "err.ge": "The value must be at least {n}.",
        "err.le": "The value must be at most {n}.",
        "err.choice": "Please choose one of the options.",
        "err.date": "Please enter a date as YYYY-MM-DD.",
        "err.currency": "Use a three-letter currency code such as CNY, EUR or USD.",
        "err.domains_min": "Choose at least one technology field.",
        "err.domains_unknown": "Unknown technology field code(s): {codes}.",
        "err.region_unknown": "Unknown region code {code}; choose one from the list.",
        "err.trl_window": "The highest readiness ({max}) is below the lowest ({min}).",
        "err.budget_window": "The upper budget is below the lower budget.",
        "err.no_spaces": "Spaces are not allowed here.",
        "err.other": "This value is not valid ({detail}).",
    },
    "zh": {
        "site.name": "TechMatch 技术对接",
        "site.tagline": "技术转移供需对接平台",
        "nav.need": "发布需求",
        "nav.technology": "发布技术成果",
        "lang.switch": "语言",
        "lang.en": "English",
        "lang.zh": "中文",
        "footer.text": "TechMatch 将企业技术需求与高校院所科研成果精准对接，"
        "每一项匹配都由持证技术经纪人跟进。",
        "footer.privacy": "我们绝不公开您的联系方式。",
        "skip": "跳到主要内容",
        "form.required": "必填",
        "form.optional": "选填",
        "form.required_note": "带 * 的为必填项。",
        "form.errors_title": "请修改以下 {count} 处标出的内容。",
        "form.error_prefix": "错误：",
        "form.no_account": "无需注册账号。提交后您将获得一个专属链接，可随时查看进展。",
        "form.choose": "— 请选择 —",
        "form.none": "— 不限 —",
        "form.multi_help": "可选择一项或多项。在电脑上按住 Ctrl（Mac 上按 ⌘）可多选。",
        "form.whole_field": "{name}（整个领域）",
        "form.confidential": "保密",
        "form.confidential_help": "仅持证技术经纪人可查看详细内容，不会公开展示。",
        "form.chars_max": "最多 {max} 个字符。",
        "trl.levels_title": "技术成熟度各等级是什么意思？",
        "trl.option": "TRL {trl} — {name}",
        "trl.level": "TRL {trl}",
        "region.countries": "国家和地区",
        "region.subdivisions": "{country}：省、州",
        "need.page_title": "发布技术需求",
        "need.intro": "请描述贵企业希望解决的技术难题。"
        "我们会将其与高校和科研院所的科研成果进行匹配，并把最合适的结果交给持证技术经纪人跟进。",
        "need.section.company": "企业信息",
        "need.section.need": "需求内容",
        "need.section.readiness": "技术成熟度（TRL）",
        "need.section.region": "地域范围",
        "need.section.budget": "预算与时间",
        "need.section.contact": "联系方式与保密",
        "need.enterprise": "企业名称",
        "need.enterprise_help": "贵企业的注册名称。",
        "need.title": "需求标题",
        "need.title_help": "一句话概括，5–300 个字符，例如“海上风电塔筒防腐涂层”。",
        "need.description": "需求描述",
        "need.description_help": "技术难题、约束条件和期望达到的性能指标（20–20,000 个字符）。",
        "need.domains": "技术领域",
        "need.trl_min": "可承接的最低成熟度",
        "need.trl_min_help": "贵企业团队仍能接手的最不成熟的技术阶段。",
        "need.trl_max": "希望的最高成熟度",
        "need.trl_max_help": "选填：如希望早期合作开发，可设置上限。",
        "need.trl_hard": "只显示处于该成熟度范围内的技术",
        "need.region_scope": "寻找范围",
        "need.scope.local": "本地",
        "need.scope.local_help": "本省（州）或所在经济区域（例如长三角）。",
        "need.scope.national": "全国",
        "need.scope.national_help": "本国范围内。",
        "need.scope.international": "国际",
        "need.scope.international_help": "全球范围；距离较近的合作方排序仍略靠前。",
        "need.home_region": "企业所在地",
        "need.home_region_help": "国家；如列表中有，可选择省或州。",
        "need.region_hard": "只显示该范围内的技术",
        "need.budget_min": "预算下限",
        "need.budget_max": "预算上限",
        "need.budget_help": "选填。填写金额，例如 500000；"
        "币种用三位字母代码表示（CNY、EUR、USD 等）。",
        "need.currency": "币种",
        "need.currency_help": "三位字母代码，例如 CNY、EUR、USD。",
        "need.deadline": "截止日期",
        "need.deadline_help": "选填：希望何时前获得解决方案。",
        "need.contact": "联系人",
        "need.contact_help": "姓名和电子邮箱，便于技术经纪人联系您。",
        "need.submit": "提交需求",
        "need.done_title": "您的需求已收到",
        "need.done_intro": "谢谢！我们正在将您的需求与库中的技术成果进行匹配，"
        "最合适的结果将交给持证技术经纪人跟进。",
        "tech.page_title": "发布技术成果",
        "tech.intro": "请描述贵单位希望转化的科研成果、专利或技术。我们会将其与企业需求进行匹配，"
        "并把有希望的结果交给持证技术经纪人跟进。",
        "tech.section.owner": "所属单位",
        "tech.section.technology": "技术内容",
        "tech.section.readiness": "技术成熟度（TRL）",
        "tech.section.ip": "知识产权与转化方式",
        "tech.section.privacy": "隐私",
        "tech.owner": "高校或科研院所",
        "tech.owner_help": "技术的权利人。",
        "tech.title": "技术名称",
        "tech.title_help": "一句话概括，5–300 个字符。",
        "tech.description": "技术描述",
        "tech.description_help": "技术是什么、能做什么、有何优势和应用场景（20–20,000 个字符）。",
        "tech.domains": "技术领域",
        "tech.keywords": "关键词",
        "tech.keywords_help": "选填，用分号分隔，例如：涂层; 防腐; 海上。",
        "tech.trl": "技术成熟度",
        "tech.trl_help": "该技术目前的成熟程度。",
        "tech.region": "单位所在地",
        "tech.region_help": "国家；如列表中有，可选择省或州。",
        "tech.ip_status": "专利状态",
        "tech.ip.granted": "已授权专利",
        "tech.ip.pending": "专利申请中",
        "tech.ip.none": "无专利",
        "tech.ip.trade_secret": "技术秘密 / 专有技术",
        "tech.patents": "专利号",
        "tech.patents_help": "选填，用分号分隔，例如：CN114123456B; EP3456789B1。",
        "tech.licensing": "希望的转化方式",
        "tech.lic.exclusive_licence": "独占许可",
        "tech.lic.non_exclusive_licence": "普通许可",
        "tech.lic.assignment": "转让",
        "tech.lic.co_development": "合作开发",
        "tech.lic.open": "开放使用",
        "tech.submit": "提交技术成果",
        "tech.done_title": "您的技术成果已收到",
        "tech.done_intro": "谢谢！我们正在将您的技术成果与企业需求进行匹配，"
        "有希望的结果将交给持证技术经纪人跟进。",
        "done.reference": "编号：",
        "done.link_title": "您的专属进度链接",
        "done.link_help": "请妥善保存此链接：这是查看进展的唯一途径，"
        "任何持有该链接的人都能看到状态（但看不到您的联系方式）。",
        "done.open": "打开进度页面",
        "track.page_title": "进度",
        "track.title": "标题",
        "track.submitted": "提交日期",
        "track.status": "状态",
        "track.kind.need": "技术需求",
        "track.kind.technology": "技术成果",
        "track.steps": "进展",
        "status.received": "已收到",
        "status.received_help": "我们已收到您的提交，正在寻找匹配。",
        "status.matched": "已匹配",
        "status.matched_help.need": "已找到 {count} 项技术成果。",
        "status.matched_help.technology": "已找到 {count} 项企业需求。",
        "status.claimed": "经纪人跟进中",
        "status.claimed_help": "一位持证技术经纪人正在跟进匹配结果，并将与您联系。",
        "status.negotiating": "洽谈中",
        "status.negotiating_help": "双方正在洽谈合作条款。",
        "status.agreed": "已达成协议",
        "status.agreed_help": "双方已达成协议。",
        "status.closed": "已关闭",
        "status.closed_help": "本次匹配未能达成协议。",
        "status.archived": "已关闭",
        "status.archived_help": "该记录已归档。",
        "error.title": "出错了",
        "error.back": "返回表单",
        "error.home": "发布需求",
        "csrf.title": "表单会话已失效",
        "csrf.message": "表单的安全令牌缺失或无效（例如页面打开时间过长，或浏览器禁用了 Cookie）。"
        "请返回并刷新表单后重新提交。",
        "notfound.title": "页面不存在",
        "notfound.track": "没有与此进度链接对应的提交记录。请检查链接是否复制完整。",
        "toolarge.title": "提交内容过大",
        "toolarge.message": "表单数据超出允许的大小。请缩短描述后重试。",
        "err.required": "此项为必填项。",
        "err.min_length": "请至少输入 {n} 个字符。",
        "err.max_length": "最多可输入 {n} 个字符（您输入了 {got} 个）。",
        "err.max_length_plain": "最多可输入 {n} 个字符。",
        "err.int": "请选择一个整数。",
        "err.number": "请输入数字，例如 500000。",
        "err.ge": "数值不能小于 {n}。",
        "err.le": "数值不能大于 {n}。",
        "err.choice": "请从选项中选择一项。",
        "err.date": "请按 YYYY-MM-DD 格式输入日期。",
        "err.currency": "请使用三位字母的币种代码，例如 CNY、EUR 或 USD。",
        "err.domains_min": "请至少选择一个技术领域。",
        "err.domains_unknown": "未知的技术领域代码：{codes}。",
        "err.region_unknown": "未知的地区代码 {code}，请从列表中选择。",
        "err.trl_window": "最高成熟度（{max}）低于最低成熟度（{min}）。",
        "err.budget_window": "预算上限低于预算下限。",
        "err.no_spaces": "此处不能包含空格。",
        "err.other": "输入无效（{detail}）。",
    },
}


def normalise(lang: str | None) -> str | None:
    """``en``/``zh`` for a supported language tag (``zh-CN`` → ``zh``), else None."""
    if not lang:
        return None
    base = lang.strip().lower().replace("_", "-").split("-")[0]
    return base if base in LANGUAGES else None


def t(lang: str, key: str, **params: Any) -> str:
    """The message ``key`` in ``lang`` with ``params`` filled in."""
    text = MESSAGES.get(lang, {}).get(key) or MESSAGES[DEFAULT_LANGUAGE].get(key) or key
    return text.format(**params) if params else text


_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^required field is missing$"), "err.required"),
    (re.compile(r"^List should have at least 1 item"), "err.domains_min"),
    (re.compile(r"^String should have at least (?P<n>\d+) characters?"), "err.min_length"),
    (re.compile(r"^String should have at most (?P<n>\d+) characters?"), "err.max_length_plain"),
    (re.compile(r"^Input should be a valid integer"), "err.int"),
    (re.compile(r"^Input should be a valid number"), "err.number"),
    (re.compile(r"^Input should be (?:a )?finite number"), "err.number"),
    (re.compile(r"^Input should be greater than or equal to (?P<n>[\d.]+)"), "err.ge"),
    (re.compile(r"^Input should be less than or equal to (?P<n>[\d.]+)"), "err.le"),
    (re.compile(r"^Input should be (?:'[^']*'(?:, | or )?)+$"), "err.choice"),
    (re.compile(r"^Input should be a valid (?:date|datetime)"), "err.date"),
    (re.compile(r"^String should match pattern '\^\[A-Z\]\{3\}\$'"), "err.currency"),
    (re.compile(r"^String should match pattern '\^\\S\+\$'"), "err.no_spaces"),
    (re.compile(r"^unknown domain code\(s\) (?P<codes>.+?) \(see"), "err.domains_unknown"),
    (re.compile(r"^give at least one domain code"), "err.domains_min"),
    (re.compile(r"^unknown region code '?(?P<code>[^';]*)'?"), "err.region_unknown"),
    (re.compile(r"trl_max \((?P<max>\d+)\) is below trl_min \((?P<min>\d+)\)"), "err.trl_window"),
    (re.compile(r"budget_max is below budget_min"), "err.budget_window"),
]


def translate_error(lang: str, message: str) -> str:
    """A friendly translated message for one validate_record message (field part removed)."""
    message = message.strip()
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    for pattern, key in _RULES:
        found = pattern.search(message)
        if found:
            return t(lang, key, **found.groupdict())
    return t(lang, "err.other", detail=message)
