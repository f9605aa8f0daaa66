"""The pipeline bench's own arithmetic: how it counts a rate and when it calls the target met."""

from __future__ import annotations

from bench.pipeline import TARGET_RATE, output_rate, sustained


def test_orders_at_even_spacing_give_the_rate_they_came_at():
    assert output_rate([1000 + 2 * i for i in range(8001)]) == 500.0  # one order every 2 ms
    assert output_rate([5]) == 0.0 and output_rate([]) == 0.0


def test_a_path_falling_behind_shows_the_rate_it_managed():
    assert round(output_rate([round(i * 1000 / 450) for i in range(4501)])) == 450


def test_one_late_order_does_not_count_as_time_spent_on_all_of_them():
    times = [2 * i for i in range(8000)]
    assert output_rate(times + [times[-1] + 1500]) == 500.0  # the last case waited 1.5 s more
    assert output_rate([times[0] - 1500] + times) == 500.0


def test_the_target_needs_every_appeal_accepted_and_dispatched_fast_enough_in_time():
    kept_up = dict(offered=8000, accepted=8000, filed=8000, dispatched=8000, per_s=TARGET_RATE + 10, p99_s=0.6)
    assert sustained(**kept_up)
    assert not sustained(**(kept_up | {"accepted": 7999}))  # one answered late or not 201
    assert not sustained(**(kept_up | {"dispatched": 7999}))  # one never got its order
    assert not sustained(**(kept_up | {"per_s": TARGET_RATE - 1}))
    assert not sustained(**(kept_up | {"p99_s": 2.0})) and not sustained(**(kept_up | {"p99_s": None}))
    assert not sustained(**(kept_up | {"offered": 0, "accepted": 0, "filed": 0, "dispatched": 0}))


def test_rows_counts_what_each_table_took_between_readings_and_leaves_still_tables_out():
    from bench.rows import delta

    before = {("sla", "clocks"): {"n_tup_ins": 10, "n_tup_upd": 2, "n_tup_del": 0, "n_tup_hot_upd": 1},
              ("sla", "leases"): {"n_tup_ins": 1, "n_tup_upd": 5, "n_tup_del": 0, "n_tup_hot_upd": 5}}  # fmt: skip
    after = {("sla", "clocks"): {"n_tup_ins": 17, "n_tup_upd": 3, "n_tup_del": 0, "n_tup_hot_upd": 1},
             ("sla", "leases"): {"n_tup_ins": 1, "n_tup_upd": 5, "n_tup_del": 0, "n_tup_hot_upd": 5},
             ("notify", "messages"): {"n_tup_ins": 5, "n_tup_upd": 10, "n_tup_del": 1, "n_tup_hot_upd": 8}}  # fmt: skip
    assert delta(before, after) == {
        ("sla", "clocks"): {"n_tup_ins": 7, "n_tup_upd": 1, "n_tup_del": 0, "n_tup_hot_upd": 0},
        ("notify", "messages"): {"n_tup_ins": 5, "n_tup_upd": 10, "n_tup_del": 1, "n_tup_hot_upd": 8},  # a table new since
    }
