"""Popularity from feedback events: smoothed, decayed over time and centred on the average."""

from datetime import datetime, timedelta

from trooply.feedback.popularity import popularity_signals


def test_popularity_is_smoothed_decayed_and_centred_on_the_average():
    now = datetime(2026, 11, 1)
    week = timedelta(days=7)
    impressions = [(["a", "b", "c"], now)] * 100
    events = [("a", "purchase", now)] * 10 + [("b", "click", now)] * 10
    signals = popularity_signals(events, impressions, now, week)
    assert signals["a"] > signals["b"] > signals["c"]
    assert all(0 < value < 1 for value in signals.values())
    # The same purchases a half-life ago count half.
    older = popularity_signals([("a", "purchase", now - week)] * 10 + [("b", "click", now)] * 10,
                               impressions, now, week)
    assert older["a"] < signals["a"]
    # One click on a product shown once is not trusted like ten clicks on ten impressions.
    sparse = popularity_signals([("x", "click", now)], [(["x"], now), (["y"] * 1, now)] + [(["y"], now)] * 9, now, week)
    assert 0.5 < sparse["x"] < 0.9
    assert popularity_signals([], impressions, now, week) == {}
