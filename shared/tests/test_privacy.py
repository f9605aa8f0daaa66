from shared.privacy import contains_personal_numbers, mask_id_number, mask_phone, scrub


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
