"""The query reader over a table of phrasings: what becomes a filter, what stays for CLIP, and numbers that
must never be read as prices."""

import pytest

from trooply.ranking.profiles import load_profiles
from trooply.search.phrases import QueryReader

READER = QueryReader(load_profiles())


@pytest.mark.parametrize("query, text, filters", [
    ("red bag under 12 dollars", "red bag", {"price": {"lte": 12}}),
    ("shoes under $50", "shoes", {"price": {"lte": 50}}),
    ("dress less than 50 dollars", "dress", {"price": {"lte": 50}}),
    ("jeans below fifty", "jeans", {"price": {"lte": 50}}),
    ("boots between 20 and 40", "boots", {"price": {"gte": 20, "lte": 40}}),
    ("lamps over 100", "lamps", {"price": {"gte": 100}}),
    ("sneakers cheaper than 80", "sneakers", {"price": {"lte": 80}}),
    ("dress between $20 and $40", "dress", {"price": {"gte": 20, "lte": 40}}),
    ("jacket 20 to 40 dollars", "jacket", {"price": {"gte": 20, "lte": 40}}),
    ("$20-$40 sneakers", "sneakers", {"price": {"gte": 20, "lte": 40}}),
    ("watch under one hundred and fifty euros", "watch", {"price": {"lte": 150}}),
    ("scarf under forty-five bucks", "scarf", {"price": {"lte": 45}}),
    ("tote under a hundred dollars", "tote", {"price": {"lte": 100}}),
    ("watch under 1,200", "watch", {"price": {"lte": 1200}}),
    ("laptop under 1.5k", "laptop", {"price": {"lte": 1500}}),
    ("rug at least 49.99 pounds", "rug", {"price": {"gte": 49.99}}),
    ("sneakers max 80 dollars", "sneakers", {"price": {"lte": 80}}),
    ("coat about 40 euros", "coat", {"price": {"gte": 32, "lte": 48}}),
    ("a red bag for under 12 dollars", "red bag", {"price": {"lte": 12}}),
    ("Blue running shoes under $50.", "Blue running shoes", {"price": {"lte": 50}}),
    ("shoes in stock", "shoes", {"in_stock": True}),
    ("available sneakers", "sneakers", {"in_stock": True}),
    ("navy blue sneakers in stock under 80", "navy blue sneakers", {"price": {"lte": 80}, "in_stock": True}),
    ("shoes that are in stock and under 50", "shoes", {"price": {"lte": 50}, "in_stock": True}),
    ("under 50, red", "red", {"price": {"lte": 50}}),
    ("less than 50 dollars", "", {"price": {"lte": 50}}),
])
def test_price_and_stock_phrases_become_filters_and_leave_the_rest_for_clip(query, text, filters):
    reading = READER.read(query)
    assert (reading.text, reading.filters) == (text, filters)


@pytest.mark.parametrize("query", [
    "iphone 15", "size 42 shoes", "3 pack socks", "under armour hoodie", "over ear headphones", "tv over 40 inches",
    "toys for less than 3 years", "book about 50 states", "levi's 501 jeans", "2 for 1", "air max 90 sneakers",
    "up to 50% off", "sizes between 38 and 42", "shoes 38-42", "50$ watch", "from 2020", "out of stock boots",
    "not available", "4k tv", "Under 1" + "0" * 400,
])
def test_numbers_that_are_not_prices_are_left_alone(query):
    reading = READER.read(query)
    assert reading.filters == {} and reading.text == query


@pytest.mark.parametrize("query, colours, profile", [
    ("red bag under 12 dollars", ["red"], "accessories"),
    ("navy blue sneakers", ["navy"], "footwear"),  # one colour: navy, a blue
    ("light blue shirt and dark green trousers", ["light blue", "dark green"], "apparel"),
    ("off-white sneakers", ["off white"], "footwear"),
    ("bag for shoes", [], "accessories"),  # the thing sought is the bag
    ("shoe bag", [], "accessories"),
    ("sunglasses", [], "optics"),
    ("something nice", [], None),
])
def test_colour_and_family_words(query, colours, profile):
    reading = READER.read(query)
    assert (reading.colours, reading.profile) == (colours, profile)


@pytest.mark.parametrize("query, cheaper, text", [
    ("like this, but cheaper", True, ""),
    ("cheaper than this one", True, ""),
    ("the same in red but less expensive", True, "the same in red"),
    ("cheaper than 80", False, ""),
    ("cheap red bag", False, "cheap red bag"),
])
def test_cheaper_without_an_amount_is_relative(query, cheaper, text):
    reading = READER.read(query)
    assert (reading.cheaper, reading.text) == (cheaper, text)


def test_the_reader_is_deterministic():
    assert READER.read("red bag under 12 dollars") == READER.read("red bag under 12 dollars")
