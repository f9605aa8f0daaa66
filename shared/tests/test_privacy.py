import pytest

from shared.privacy import contains_personal_numbers, mask_id_number, mask_phone, redact_for_public, round_coordinate, scrub


def test_phone_is_masked_the_way_citizens_expect():
    assert mask_phone("13812348000") == "138****8000"
    assert mask_phone("+86 138 1234 8000") == "138****8000"


def test_id_number_keeps_region_and_last_four():
    assert mask_id_number("45132219800101123X") == "451322********123X"


def test_scrub_masks_numbers_inside_free_text():
    text = "联系人电话13812348000，身份证451322198001011234，门牌号12号"
    clean = scrub(text)
    assert "13812348000" not in clean and "451322198001011234" not in clean
    assert "138****8000" in clean and "451322********1234" in clean
    assert "门牌号12号" in clean
    assert not contains_personal_numbers(clean)


def test_scrub_leaves_ordinary_numbers_alone():
    assert scrub("订单 XC-20261122-000123 共 286 件") == "订单 XC-20261122-000123 共 286 件"


# What the public and read-only staff are shown (docs/rules.md, "Public feeds"). Each row:
# the text as filed, the text as published.
PUBLIC_TEXTS = [
    # the examples
    (
        "我是张三，电话13912345678，身份证450121199001011234，住西宁街12号3单元501，路灯坏了",
        "我是张*，电话139****5678，身份证450121********1234，住西宁街**号**单元**，路灯坏了",
    ),
    ("板江村李四家（村民反映住板江村5组12号）", "板江村李*家（村民反映住板江村5组**号）"),
    ("城关镇路灯坏了 请联系13912345678", "城关镇路灯坏了 请联系139****5678"),
    # phones: mobiles with a country code, landlines with or without separators
    ("+86 139 1234 5678 打不通", "139****5678 打不通"),
    ("座机0772-5512345", "座机0772-****2345"),
    ("(0772)5512345 白天有人", "0772-****2345 白天有人"),
    ("电话07725512345", "电话0772-****2345"),
    # names a person gives: the surname stays, as 张* does on a masked list
    ("我叫韦小明，是城中社区居民", "我叫韦**，是城中社区居民"),
    ("本人覃某某反映", "本人覃**反映"),
    ("联系人：蒙大山", "联系人：蒙**"),
    ("姓名黄丽", "姓名黄*"),
    ("我姓王名小明", "我姓王名**"),
    # house, building and room numbers: the road, the village and its group stay
    ("绿苑小区5栋2单元301室漏水", "绿苑小区**栋**单元**室漏水"),
    ("西宁街12号3-501门口", "西宁街**号**门口"),
    ("幸福小区2号楼3楼楼道灯坏", "幸福小区**号楼**楼楼道灯坏"),
    ("新城6幢电梯坏了", "新城**幢电梯坏了"),
]

# Texts that carry no personal data and must come out as they went in.
UNCHANGED = [
    "路灯坏了三天",
    "坐3号路公交车要等一个小时",
    "地铁3号线施工噪音",
    "5月12号晚上停水",
    "江龙村3组的水渠堵了",
    "西宁街2公里处有坑",
    "我是本地居民",
    "我是江龙村的村民",
    "王先生反映噪音扰民",
    "我姓王",
    "打12345热线没人接",
    "花了300元修路灯",
    "订单 XC-20261122-000123 共 286 件",
    "第3期工程还没完工",
    "",
]


@pytest.mark.parametrize(("filed", "published"), PUBLIC_TEXTS)
def test_public_text_masks_phones_ids_names_and_doors(filed, published):
    assert redact_for_public(filed) == published


@pytest.mark.parametrize("text", UNCHANGED)
def test_public_text_leaves_ordinary_text_alone(text):
    assert redact_for_public(text) == text


@pytest.mark.parametrize("text", [filed for filed, _ in PUBLIC_TEXTS] + UNCHANGED)
def test_public_text_is_masked_once_however_often_it_is_masked(text):
    """Stored summaries are masked when written and again when read: the same result."""
    once = redact_for_public(text)
    assert redact_for_public(once) == once


def test_coordinates_are_rounded_to_about_a_hundred_metres():
    assert round_coordinate(24.0661234) == 24.066
    assert round_coordinate(108.6654321) == 108.665
    assert round_coordinate(None) is None
