"""The console's pure parts: the session cookie, the board's counts and cards, the map, the live hub."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from services.console.board import build_board, clock_cards, day_start, digest, summarise_cases
from services.console.live import LiveHub, sse
from services.console.mapdata import map_data, spot_in
from services.console.session import Session, decode_session, encode_session
from services.console.settings import load_console_settings

NOW = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)  # 10:00 in Beijing
TODAY = day_start(NOW)
SECRET = "a console secret of at least 32 bytes"
DISPATCHER = Session("demo-centre-dispatcher-wx", "何某", "centre_dispatcher", "LB-WX-ZZZX", "tok.en.value", 2_000_000_000)
UNITS = [
    {"code": "LB-WX", "name": "武宣县", "kind": "county", "parent": "LB"},
    {"code": "LB-WX-WX", "name": "武宣镇", "kind": "township", "parent": "LB-WX",
     "polygon": [[23.585, 109.6535], [23.585, 109.683], [23.603, 109.683], [23.603, 109.6535]]},
    {"code": "LB-WX-TW", "name": "通挽镇", "kind": "township", "parent": "LB-WX",
     "polygon": [[23.515, 109.417], [23.515, 109.449], [23.545, 109.449], [23.545, 109.417]]},
    {"code": "LB-WX-ZJJ", "name": "武宣县住房和城乡建设局", "short_name": "住建局", "kind": "department", "parent": "LB-WX"},
    {"code": "LB-XB-QJ", "name": "迁江镇", "kind": "township", "parent": "LB-XB",
     "polygon": [[23.6, 108.9], [23.6, 109.0], [23.7, 109.0], [23.7, 108.9]]},
]  # fmt: skip


def case(case_id: str, status: str, township: str | None, created: datetime, **extra: object) -> dict:
    return {"case_id": case_id, "tracking_no": f"XC-{case_id}", "title": f"诉求{case_id}", "status": status,
            "township": township, "created_at": created.isoformat(), "category": "烦心事", "lat": None, "lng": None, **extra}  # fmt: skip


# --------------------------------------------------------------------------- session cookie


def test_a_session_survives_the_cookie_and_keeps_the_token_out_of_the_public_view() -> None:
    cookie = encode_session(DISPATCHER, SECRET)
    back = decode_session(cookie, SECRET, now=1_900_000_000)
    assert back == DISPATCHER
    assert "token" not in back.public() and "tok.en.value" not in str(back.public())
    headers = back.actor_headers()
    assert headers["Authorization"] == "Bearer tok.en.value"
    assert (headers["X-Actor-Id"], headers["X-Actor-Role"], headers["X-Actor-Unit"]) == (
        "demo-centre-dispatcher-wx", "centre_dispatcher", "LB-WX-ZZZX")


def test_a_tampered_foreign_or_expired_cookie_is_no_session() -> None:
    cookie = encode_session(DISPATCHER, SECRET)
    head, body, sig = cookie.split(".")
    assert decode_session(f"{head}.{body}.{sig[:-2]}xx", SECRET, now=0) is None
    assert decode_session(cookie, "another secret of at least thirty-two bytes", now=0) is None
    assert decode_session(cookie, SECRET, now=2_000_000_001) is None
    assert decode_session(None, SECRET) is None and decode_session("garbage", SECRET) is None


def test_settings_name_the_variable_at_fault(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONSOLE_DISPATCH_URL", "localhost:8002")
    with pytest.raises(SystemExit, match="CONSOLE_DISPATCH_URL"):
        load_console_settings()
    monkeypatch.setenv("CONSOLE_DISPATCH_URL", "http://127.0.0.1:9/")
    assert load_console_settings().dispatch_url == "http://127.0.0.1:9"
    monkeypatch.setenv("CONSOLE_SESSION_SECRET", "short")
    with pytest.raises(SystemExit, match="CONSOLE_SESSION_SECRET: must be at least 32 bytes"):
        load_console_settings()


# --------------------------------------------------------------------------- board


def test_today_is_the_day_in_beijing() -> None:
    assert day_start(datetime(2026, 3, 9, 17, 0, tzinfo=UTC)) == datetime(2026, 3, 9, 16, 0, tzinfo=UTC)  # 01:00 on the 10th
    assert day_start(datetime(2026, 3, 9, 15, 59, tzinfo=UTC)) == datetime(2026, 3, 8, 16, 0, tzinfo=UTC)


def test_cases_are_counted_received_today_in_progress_and_closed_per_township() -> None:
    cases = [
        case("a", "dispatched", "LB-WX-WX", NOW - timedelta(hours=1)),
        case("b", "in_progress", "LB-WX-WX", TODAY - timedelta(minutes=1)),  # yesterday evening
        case("c", "closed", "LB-WX-TW", NOW - timedelta(hours=2)),
        case("d", "rated", "LB-WX-TW", TODAY - timedelta(days=3)),
        case("e", "rejected", "LB-WX-TW", NOW),  # declined: received today, never in progress
        case("f", "merged", None, NOW - timedelta(days=2)),
    ]
    summary = summarise_cases(cases, TODAY)
    assert summary["totals"] == {"received_today": 3, "in_progress": 2, "closed": 2}
    assert summary["townships"]["LB-WX-WX"] == {"received_today": 1, "in_progress": 2}
    assert summary["townships"]["LB-WX-TW"] == {"received_today": 2, "closed": 2}


def test_one_card_per_case_with_its_most_urgent_clock() -> None:
    clocks = [
        {"case_id": "a", "unit": "LB-WX-ZJJ", "name": "sign", "remaining_seconds": -600, "remaining_text": "超期10分钟", "due_at": "x", "state": "breached"},
        {"case_id": "a", "unit": "LB-WX-ZJJ", "name": "resolve", "remaining_seconds": -60, "remaining_text": "超期1分钟", "due_at": "y", "state": "breached"},
        {"case_id": "b", "unit": "LB-WX-ZJJ", "name": "resolve", "remaining_seconds": -3600, "remaining_text": "超期1小时", "due_at": "z", "state": "running"},
    ]  # fmt: skip
    cards = clock_cards(clocks, {"a": {"title": "路灯", "tracking_no": "XC-1"}}, "red")
    assert [(c["case_id"], c["clock"]) for c in cards] == [("b", "resolve"), ("a", "sign")]
    assert cards[1]["title"] == "路灯" and cards[0]["title"] is None


def test_the_board_joins_intake_sla_and_dispatch_and_digest_ignores_the_time() -> None:
    cases = [case("a", "dispatched", "LB-WX-WX", NOW), case("c", "closed", "LB-WX-TW", NOW)]
    red = [{"case_id": "a", "unit": "LB-WX-ZJJ", "name": "sign", "remaining_seconds": -5, "remaining_text": "超期", "due_at": "d", "state": "breached"}]
    board = build_board(
        now=NOW, county="LB-WX", units=UNITS, cases=cases,
        sla_board={"units": [{"unit": "LB-WX-ZJJ", "yellow": 1, "red": 1}], "totals": {"unit": "*", "yellow": 1, "red": 1}},
        dispatch_board={"unassigned": [{"case_id": "w", "title": "待派", "township": "LB-WX-TW"}], "returned": []},
        unit_counts={"LB-WX-ZJJ": {"to_sign": 1, "in_progress": 0, "due_soon": 1, "overdue": 1, "returned": 0, "resolved": 0}},
        red=red, yellow=[], sources={},
    )  # fmt: skip
    assert board["totals"] == {"received_today": 2, "in_progress": 1, "due_soon": 1, "overdue": 1, "closed": 1,
                               "waiting_dispatch": 1, "returned": 0}  # fmt: skip
    assert [t["name"] for t in board["townships"]] == ["武宣镇", "通挽镇"], "only the county's townships"
    assert board["departments"] == [{"code": "LB-WX-ZJJ", "name": "住建局", "to_sign": 1, "in_progress": 0, "due_soon": 1,
                                     "overdue": 1, "returned": 0, "resolved": 0, "yellow": 1, "red": 1}]  # fmt: skip
    assert board["cards"]["red"][0]["unit_name"] == "住建局" and board["cards"]["red"][0]["township_name"] == "武宣镇"
    assert board["cards"]["waiting"][0]["township_name"] == "通挽镇"
    later = {**board, "as_of": (NOW + timedelta(seconds=2)).isoformat()}
    assert digest(later) == digest(board)
    changed = {**board, "totals": {**board["totals"], "received_today": 3}}
    assert digest(changed) != digest(board)


def test_a_board_without_intake_still_shows_what_the_others_know() -> None:
    board = build_board(now=NOW, county="LB-WX", units=UNITS, cases=None, sla_board=None, dispatch_board=None,
                        unit_counts={}, red=[], yellow=[], sources={"intake": "intake 404: Not Found"})  # fmt: skip
    assert board["totals"]["received_today"] == 0 and board["sources"] == {"intake": "intake 404: Not Found"}


# --------------------------------------------------------------------------- map


def test_the_map_draws_open_cases_and_places_those_without_coordinates_inside_their_township() -> None:
    cases = [
        case("a", "dispatched", "LB-WX-WX", NOW, lat=23.59, lng=109.66),
        case("b", "in_progress", "LB-WX-TW", NOW),
        case("c", "closed", "LB-WX-TW", NOW),  # closed: not on the map
        case("d", "received", None, NOW),  # nowhere known: not drawn
    ]
    doc = map_data(UNITS, cases, "LB-WX")
    assert {a["code"] for a in doc["areas"]} == {"LB-WX-WX", "LB-WX-TW"}, "only this county's outlines"
    points = {p["case_id"]: p for p in doc["points"]}
    assert set(points) == {"a", "b"}
    assert (points["a"]["lat"], points["a"]["approximate"]) == (23.59, False)
    assert points["b"]["approximate"] and 23.515 < points["b"]["lat"] < 23.545 and 109.417 < points["b"]["lng"] < 109.449
    assert spot_in(UNITS[2]["polygon"], "b") == (points["b"]["lat"], points["b"]["lng"]), "the same spot every time"
    assert doc["extent"] == {"south": 23.515, "west": 109.417, "north": 23.603, "east": 109.683}


# --------------------------------------------------------------------------- live hub


def test_an_sse_event_is_one_json_line() -> None:
    text = sse("board", {"title": "路灯\n不亮"}, 7)
    assert text == 'id: 7\nevent: board\ndata: {"title": "路灯\\n不亮"}\n\n'


async def test_tabs_of_one_user_share_one_poller_and_get_a_snapshot_only_when_it_changes() -> None:
    values = iter([1, 1, 1, 2, 2, 3] + [3] * 1000)
    calls: list[str] = []

    async def collect(session: Session) -> dict:
        calls.append(session.user_id)
        return {"as_of": datetime.now(UTC).isoformat(), "n": next(values)}

    hub = LiveHub(collect, interval=0.01)
    first, second = hub.stream(DISPATCHER), hub.stream(DISPATCHER)
    try:
        assert await anext(first) == "retry: 3000\n\n"
        assert await anext(second) == "retry: 3000\n\n"
        seen_first = [await asyncio.wait_for(anext(first), 5) for _ in range(3)]
        seen_second = [await asyncio.wait_for(anext(second), 5)]
        assert ['"n": 1' in e for e in seen_first] == [True, False, False]
        assert ['"n": 2' in seen_first[1], '"n": 3' in seen_first[2]] == [True, True]
        assert seen_first[0].startswith("id: 1\n") and seen_first[2].startswith("id: 3\n")
        assert seen_second[0].startswith("id: 3\n"), "a slow tab skips to the latest"
        assert len(hub.feeds) == 1, "one feed for one user"
    finally:
        await first.aclose()
        await second.aclose()
    assert hub.feeds == {}, "the poller stops with the last tab"
    polls = len(calls)
    await asyncio.sleep(0.05)
    assert len(calls) == polls
    await hub.close()
