"""Personal data rules (PIPL Art. 28/51; GB/T 35273-2020): masking and scrubbing.

Phones are shown as ``138****8000``, resident ID numbers as ``110105********1234``;
free text that may contain either is scrubbed before it reaches a log line or an event.
"""

from __future__ import annotations

import re

# Mainland mobile numbers (optionally +86), not glued to longer digit runs.
_PHONE = re.compile(r"(?<!\d)(?:\+?86[- ]?)?(1[3-9]\d)[- ]?(\d{4})[- ]?(\d{4})(?!\d)")
# 18-character resident identity numbers (last may be X).
_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])(\d{6})(\d{8})(\d{3}[\dXx])(?![0-9A-Za-z])")


def mask_phone(phone: str | None) -> str | None:
    """138****8000; shorter numbers keep only their last four digits."""
    if not phone:
        return phone
    digits = re.sub(r"\D", "", phone)
    if digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if len(digits) == 11:
        return f"{digits[:3]}****{digits[-4:]}"
    return "****" + digits[-4:] if len(digits) > 4 else "****"


def mask_id_number(value: str | None) -> str | None:
    if not value:
        return value
    if len(value) == 18:
        return f"{value[:6]}********{value[-4:]}"
    return "*" * max(0, len(value) - 4) + value[-4:]


def scrub(text: str) -> str:
    """Mask every phone and ID number found in free text."""
    if not text or not any(ch.isdigit() for ch in text):
        return text
    text = _ID_NUMBER.sub(lambda m: f"{m.group(1)}********{m.group(3)[-4:]}", text)
    return _PHONE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)


def contains_personal_numbers(text: str) -> bool:
    return bool(_PHONE.search(text) or _ID_NUMBER.search(text))


# --------------------------------------------------------------------------- public text

# Landlines: area code 0 + 2–3 digits, then 7–8 digits ("0772-5512345", "(0772)5512345").
_LANDLINE = re.compile(r"(?<![\d-])\(?(0\d{2,3})\)?[- ]?(\d{3,4})(\d{4})(?![\d-])")
# The commonest surnames (about nine in ten citizens carry one of these); a name is looked
# for only after one of them, so "我是本地居民" or "我是村民" are left as written.
_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁"
    "任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武"
    "戴莫孔向汤蓝农蒙甘骆欧卜凌"
)
# One character of a given name: Chinese, but not a place word, so that "我是江龙村的" stays.
_GIVEN = r"(?:(?![村镇乡屯寨组区县市路街社])[\u4e00-\u9fff])"
_NOT_PLACE_NEXT = r"(?![村镇乡屯寨组区县市路街社])"
# A person naming themselves or being named: 我是张三 / 我叫张三 / 本人张三 / 名叫 / 姓名 / 联系人.
# The surname stays (张*), the given name is masked.
_SELF_NAME = re.compile(rf"(我是|我叫|本人|名叫|叫做|姓名[:：]?|联系人[:：]?)([{_SURNAMES}])({_GIVEN}{{1,2}}){_NOT_PLACE_NEXT}")
# 姓张名三 / 姓张，叫张三: the given name after 名.
_SURNAME_THEN_NAME = re.compile(rf"(姓[{_SURNAMES}])(名)({_GIVEN}{{1,2}})")
# A household named after a place: 板江村李四家 → 板江村李*家.
_HOUSEHOLD = re.compile(rf"(?<=[村组屯寨队])([{_SURNAMES}])({_GIVEN}{{1,2}})(?=家)")
# A house number: digits right after a place word (路 街 巷 村 组 小区 号 单元 …) and right
# before a door word (号 栋 单元 室 …): 城东路12号 → 城东路**号; 5组12号 → 5组**号 (the group
# stays). A date (5月12号) or a bus line (3号路, 地铁3号线) is not after a place word.
_PLACE_WORDS = "路街道巷弄里村组屯寨区苑园庭府城厦寓楼栋幢座元号期队坊湾坝场"
_DOOR_NUMBER = re.compile(rf"(?<=[{_PLACE_WORDS}])\d+(?:-\d+)*(?=号(?![路线])|栋|幢|单元|室|户|座|楼|层|弄)")
# The room after a building or entrance, or an entrance-room pair after the house number:
# 3单元501 → 3单元**; 2栋301 → 2栋**; 12号3-501 → 12号** (a count such as 3天 stays).
_NOT_A_COUNT = r"(?![\d组队月日天点时年个次人元米])"
_ROOM_NUMBER = re.compile(
    rf"(?<=单元|号楼)\d+(?:-\d+)*{_NOT_A_COUNT}|(?<=[栋幢])\d+(?:-\d+)*{_NOT_A_COUNT}|(?<=号)\d+(?:-\d+)+{_NOT_A_COUNT}"
)


def redact_for_public(text: str | None) -> str | None:
    """Free text as it may be shown to someone who may not open the citizen's contact: the
    public (Open311, 公示) and staff who only read (the auditor). On top of ``scrub``
    (mobiles, ID numbers): landlines keep their area code and last four digits, a name a
    person gives keeps its surname (我是张*), a household keeps its surname (李*家), and
    house, building and room numbers are masked (城东路**号**单元**) while the road,
    village and group stay. Idempotent: masked text comes back unchanged."""
    if not text:
        return text
    text = scrub(text)
    text = _LANDLINE.sub(lambda m: f"{m.group(1)}-****{m.group(3)}", text)
    text = _SELF_NAME.sub(lambda m: m.group(1) + m.group(2) + "*" * len(m.group(3)), text)
    text = _SURNAME_THEN_NAME.sub(lambda m: m.group(1) + m.group(2) + "*" * len(m.group(3)), text)
    text = _HOUSEHOLD.sub(lambda m: m.group(1) + "*" * len(m.group(2)), text)
    text = _DOOR_NUMBER.sub("**", text)
    return _ROOM_NUMBER.sub("**", text)


def round_coordinate(value: float | None, places: int = 3) -> float | None:
    """A coordinate for the public: 3 decimals is about 110 m north–south (less east–west),
    enough to show the street or the village, not the door."""
    return None if value is None else round(value, places)
