"""MovieLens loading from a (fake) recbole wheel: format, caching, rating mapping."""

from __future__ import annotations

import zipfile
from pathlib import Path

from recommender.evaluation.data import interaction_from_rating, load_movielens_100k, parse_atomic_file

INTER = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\t10\t5\t100\n1\t20\t3\t200\n2\t10\t1\t150\n"
ITEM = (
    "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
    "10\tToy Story\t1995\tAnimation Children's Comedy\n20\tHeat\t1995\tAction Crime Thriller\n"
)
USER = "user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n1\t24\tM\ttech\t85711\n"


def _fake_downloader(calls: list[Path]):
    def download(dest: Path) -> Path:
        calls.append(dest)
        dest.mkdir(parents=True, exist_ok=True)
        wheel = dest / "recbole-1.2.1-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as zf:
            prefix = "recbole/dataset_example/ml-100k/"
            zf.writestr(prefix + "ml-100k.inter", INTER)
            zf.writestr(prefix + "ml-100k.item", ITEM)
            zf.writestr(prefix + "ml-100k.user", USER)
        return wheel

    return download


def test_parse_atomic_file():
    rows = parse_atomic_file(INTER)
    assert rows[0] == {"user_id": "1", "item_id": "10", "rating": "5", "timestamp": "100"}
    assert len(rows) == 3


def test_load_from_wheel_and_cache(tmp_path):
    calls: list[Path] = []
    ds = load_movielens_100k(tmp_path, downloader=_fake_downloader(calls))
    assert len(calls) == 1
    assert set(ds.items) == {"10", "20"}
    toy = ds.items["10"]
    assert toy.text == "Toy Story (1995) Animation Children's Comedy"
    assert toy.topic == "Animation" and toy.genres == ("Animation", "Children's", "Comedy")
    assert toy.creator_id == "mlc10"
    assert [x.timestamp for x in ds.interactions] == [100.0, 150.0, 200.0]  # sorted by time
    assert ds.users["1"]["occupation"] == "tech"
    assert (tmp_path / "ml-100k" / "ml-100k.inter").is_file()
    # second load reads the cache, no download
    load_movielens_100k(tmp_path, downloader=_fake_downloader(calls))
    assert len(calls) == 1


def test_rating_mapping():
    like = interaction_from_rating("u", "i", 1.0, 4)
    assert like.positive and like.liked and like.watch_ratio == 1.0 and like.strength == 1.0
    partial = interaction_from_rating("u", "i", 1.0, 3)
    assert not partial.positive and not partial.skipped and partial.watch_ratio == 0.5
    skip = interaction_from_rating("u", "i", 1.0, 2)
    assert skip.skipped and skip.strength < 0 and not skip.positive
