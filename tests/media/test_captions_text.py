from __future__ import annotations

import re

from media.captions import format_timestamp, to_webvtt
from media.text import embedding_text, parse_hashtags, strip_hashtags


def test_timestamps():
    assert format_timestamp(0) == "00:00:00.000"
    assert format_timestamp(61.5) == "00:01:01.500"
    assert format_timestamp(3725.0004) == "01:02:05.000"


def test_webvtt_format():
    vtt = to_webvtt([(0.0, 2.5, " Hello  there "), {"start": 2.5, "end": 4.0, "text": "a <b> & c --> d"},
                     (4.0, 4.0, "zero length"), (5.0, 6.0, "   ")])
    lines = vtt.split("\n")
    assert lines[0] == "WEBVTT" and lines[1] == ""
    cues = re.findall(r"^(\d\d:\d\d:\d\d\.\d{3}) --> (\d\d:\d\d:\d\d\.\d{3})$", vtt, re.M)
    assert cues == [("00:00:00.000", "00:00:02.500"), ("00:00:02.500", "00:00:04.000"),
                    ("00:00:04.000", "00:00:04.001")]
    assert "Hello there" in vtt
    assert "a &lt;b&gt; &amp; c -&gt; d" in vtt
    assert "\n\n\n" not in vtt and vtt.endswith("\n")


def test_webvtt_empty():
    assert to_webvtt([]) == "WEBVTT\n\n"


def test_parse_hashtags():
    caption = "Best #Cookies ever!! #baking #fyp#ForYou #cookies #1 #Crème_Brûlée email@x.com #日本"
    assert parse_hashtags(caption) == ["cookies", "baking", "fyp", "foryou", "crème_brûlée", "日本"]
    assert parse_hashtags("") == [] and parse_hashtags(None) == []
    assert parse_hashtags("no tags # here") == []


def test_embedding_text():
    assert strip_hashtags("Best #Cookies ever #fyp") == "Best ever"
    text = embedding_text("Best #Cookies ever #slow_food", "we bake  today")
    assert text == "Best ever. cookies slow food. we bake today"
    assert embedding_text("", "") == ""
