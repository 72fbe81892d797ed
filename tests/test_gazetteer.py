"""index.gazetteer: the division a text is about, by its mentions of divisions and their parents."""

from wenda.index.gazetteer import mentions, place_of


def test_a_city_named_with_its_counties_and_province_is_the_place() -> None:
    text = "安阳市今年…我市滑县、内黄县、汤阴县…安阳的老旧小区…河南省…安阳高新区"
    assert place_of(text) == "河南省安阳市"


def test_a_county_report_names_its_city_and_province() -> None:
    assert place_of("清丰县深化改革。清丰县获评示范县。濮阳市、河南省表彰清丰") == "河南省濮阳市清丰县"


def test_evenly_named_cities_leave_the_province_and_no_place_leaves_none() -> None:
    assert place_of("郑州市、洛阳市、开封市、新乡市都在河南省") == "河南省"
    assert place_of("美国明尼苏达州州长表示,抗议活动蔓延。明尼苏达州警方称") is None  # not 达州
    assert place_of("各方加强合作,推动合作共赢") is None  # 合作 is a word before it is 合作市
    assert place_of("安阳市") is None  # named once: mentioned, not what the text is about


def test_longest_name_wins_and_a_shared_short_name_is_split() -> None:
    counts = mentions("安阳市")
    assert len(counts) == 1 and round(sum(counts.values()), 6) == 1.0
    shared = mentions("鼓楼区")  # several cities have one
    assert len(shared) > 1 and round(sum(shared.values()), 6) == 1.0
