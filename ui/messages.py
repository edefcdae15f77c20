"""Field messages of the engine in the user's language.

engine.values and engine.attachments phrase their errors in English only (the store localises
'required', links, uniqueness and rule messages itself). Until the engine takes a language for
those too, the UI translates the known shapes here; anything else is shown as it came.
"""
from __future__ import annotations

import re

_ZH = [
    (r"expected text", "应为文本"),
    (r"(?P<v>.+) is not an e-mail address", "{v} 不是有效的邮箱地址"),
    (r"(?P<v>.+) is not a phone number", "{v} 不是有效的电话号码"),
    (r"(?P<v>.+) is not a web address \(http:// or https://\)", "{v} 不是网址（应以 http:// 或 https:// 开头）"),
    (r"(?P<v>.+) is not one of (?P<o>.+)", "{v} 不是可选值之一（{o}）"),
    (r"expected a whole number", "应为整数"),
    (r"(?P<v>.+) is not a whole number", "{v} 不是整数"),
    (r"the number is too large \(at most (?P<n>\d+) digits before the decimal point\)", "数字太大（整数部分最多 {n} 位）"),
    (r"the number is too large", "数字太大"),
    (r"(?P<v>.+) is not a number", "{v} 不是数字"),
    (r"expected a (?:finite )?number", "应为数字"),
    (r"expected true or false", "应为是或否"),
    (r"(?P<v>.+) is not a date \(YYYY-MM-DD\)", "{v} 不是日期（YYYY-MM-DD）"),
    (r"(?P<v>.+) is not a date and time \(YYYY-MM-DDTHH:MM\)", "{v} 不是日期时间（YYYY-MM-DDTHH:MM）"),
    (r"(?P<v>.+) not among (?P<o>.+)", "{v} 不在可选值中（{o}）"),
    (r"expected a record id", "应为记录编号"),
    (r"(?P<v>.+) is not a record id", "{v} 不是记录编号"),
    (r"expected an uploaded file", "应为上传的文件"),
    (r"no uploaded file has this sha256.*", "找不到此文件，请先上传"),
    (r"contains a control character \((?P<c>U\+[0-9A-F]{4})\), which is not allowed", "包含不允许的控制字符（{c}）"),
    (r"contains a control character, which is not allowed", "包含不允许的控制字符"),
    (r"(?P<k>name|mime) contains a control character, which is not allowed", "{k} 包含不允许的控制字符"),
    (r"at most (?P<n>\d+) characters \((?P<m>\d+) given\)", "最多 {n} 个字符（当前 {m} 个）"),
    (r"at most (?P<n>\d+) characters", "最多 {n} 个字符"),
    (r"at least (?P<n>\d+) characters", "至少 {n} 个字符"),
    (r"does not match the expected pattern (?P<p>.+)", "格式不符合要求（{p}）"),
    (r"must be at least (?P<n>.+)", "不能小于 {n}"),
    (r"must be at most (?P<n>.+)", "不能大于 {n}"),
    (r"must be between 0 and 100", "必须在 0 到 100 之间"),
    (r"the file is larger than (?P<n>\d+) MB", "文件超过 {n} MB"),
    (r"unknown field", "未知字段"),
]
_COMPILED = [(re.compile(rx + r"\Z", re.S), out) for rx, out in _ZH]


def localize(message: str, lang: str) -> str:
    if not lang.startswith("zh") or not isinstance(message, str):
        return message
    for rx, out in _COMPILED:
        m = rx.match(message)
        if m:
            return out.format(**m.groupdict())
    return message


def localize_all(errors: dict, lang: str) -> dict:
    return {k: localize(v, lang) for k, v in errors.items()}
