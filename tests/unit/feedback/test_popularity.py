"""Popularity from feedback events: smoothed, decayed over time and centred on the average."""

from datetime import datetime, timedelta

from trooply.feedback.popularity import popularity_signals


def test_popularity_is_smoothed_decayed_and_centred_on_the_average():
    now = datetime(2026, 11, 1)
    week = timedelta(days=7)
    impressions = [(["a", "b", "c"], now)] * 100
    events = [("a", "purchase", now, 0)] * 10 + [("b", "click", now, 0)] * 10
    signals = popularity_signals(events, impressions, now, week)
    assert signals["a"] > signals["b"] > signals["c"]
    assert all(0 < value < 1 for value in signals.values())
    # The same purchases a half-life ago count half.
    older = popularity_signals([("a", "purchase", now - week, 0)] * 10 + [("b", "click", now, 0)] * 10,
                               impressions, now, week)
    assert older["a"] < signals["a"]
    # One click on a product shown once is not trusted like ten clicks on ten impressions.
    sparse = popularity_signals([("x", "click", now, 0)], [(["x"], now), (["y"] * 1, now)] + [(["y"], now)] * 9, now,
                                week)
    assert 0.5 < sparse["x"] < 0.9
    assert popularity_signals([], impressions, now, week) == {}


def test_a_click_low_on_the_page_counts_more_than_one_at_the_top():
    now = datetime(2026, 11, 1)
    week = timedelta(days=7)
    # Both products are in every page shown: "top" always first, "deep" always tenth.
    impressions = [(["top", "b", "c", "d", "e", "f", "g", "h", "i", "deep"], now)] * 200
    events = [("top", "click", now, 0)] * 10 + [("deep", "click", now, 9)] * 10
    corrected = popularity_signals(events, impressions, now, week)
    assert corrected["deep"] > corrected["top"] > corrected["b"]
    # Without the correction the same clicks tie.
    plain = popularity_signals(events, impressions, now, week, position_bias=0.0)
    assert plain["deep"] == plain["top"]
    # Fewer clicks deep in the page still beat more at the top: 4 at position 9 against 10 at position 0.
    fewer = popularity_signals([("top", "click", now, 0)] * 10 + [("deep", "click", now, 9)] * 4, impressions, now,
                               week)
    assert fewer["deep"] > fewer["top"]


def test_the_examination_model_falls_with_position_and_a_stray_deep_click_is_capped():
    from trooply.feedback.popularity import MAX_INVERSE_PROPENSITY, examination_propensity

    assert examination_propensity(0, 1.0) == 1.0
    assert examination_propensity(9, 1.0) == 0.1
    assert examination_propensity(3, 0.0) == 1.0
    assert [examination_propensity(k, 0.5) for k in range(4)] == sorted(
        (examination_propensity(k, 0.5) for k in range(4)), reverse=True)
    now, week = datetime(2026, 11, 1), timedelta(days=7)
    impressions = [([f"p{k}" for k in range(1000)], now)] * 50
    deep = popularity_signals([("p999", "click", now, 999)], impressions, now, week)
    capped = popularity_signals([("p999", "click", now, int(MAX_INVERSE_PROPENSITY) - 1)], impressions, now, week)
    assert deep["p999"] == capped["p999"]  # 1 / theta is capped: position 999 weighs like position 19
