"""Translation data: built-in generators against hand-written forms, files and mocked TFDS."""

import datetime

import numpy as np
import pytest
import tensorflow_datasets as tfds

from seqzoo.training.data import translation_builtin as builtin
from seqzoo.training.data.translation_pairs import load_pairs, text_feature_keys


def test_every_human_form_of_one_date_written_by_hand():
    expected = [
        "the third of March, 2021", "the third of march 2021", "March 3rd 2021",
        "March 3, 2021", "Mar 3 2021", "Mar. 3rd, 21", "3 March 2021", "3 mar 21",
        "Wednesday, March 3, 2021", "Wed 3 Mar 2021", "03/03/21", "3/3/2021", "03.03.2021",
        "3.3.21", "03-Mar-2021", "2021/03/03", "20210303", "MARCH 3, 2021",
    ]
    assert builtin._formats(datetime.date(2021, 3, 3)) == expected


def test_ordinals_by_hand():
    words = {1: "first", 2: "second", 11: "eleventh", 12: "twelfth", 20: "twentieth",
             22: "twenty-second", 30: "thirtieth", 31: "thirty-first"}
    suffixes = {1: "1st", 2: "2nd", 3: "3rd", 4: "4th", 11: "11th", 12: "12th", 13: "13th",
                21: "21st", 22: "22nd", 23: "23rd", 31: "31st"}
    assert {d: builtin.ordinal_word(d) for d in words} == words
    assert {d: builtin.ordinal_suffix(d) for d in suffixes} == suffixes


def test_no_human_form_means_two_dates():
    # Two-digit years and month/day orders must never collide within the covered century.
    meaning = {}
    day = datetime.date(1950, 1, 1)
    while day <= datetime.date(2049, 12, 31):
        for form in builtin._formats(day):
            assert meaning.setdefault(form, day) == day, (form, meaning[form], day)
        day += datetime.timedelta(days=3)


def test_generated_splits_are_seeded_and_disjoint():
    train, validation = builtin.generate("dates", 3000, 200, seed=5)
    again, _ = builtin.generate("dates", 3000, 200, seed=5)
    assert train == again and len(train) == 3000 and len(validation) == 200
    assert not {s for s, _ in validation} & {s for s, _ in train}
    for source, target in train[:200]:
        assert datetime.date.fromisoformat(target) and source


def test_long_pairs_translate_letter_by_letter():
    train, _ = builtin.generate("long", 200, 10)
    for source, target in train:
        assert 20 <= len(source) <= 40 and len(target) == len(source)
        for s, t in zip(source, target):
            assert ord(t) == ord(s.upper()) + 3


def test_unknown_builtin_names_are_listed():
    with pytest.raises(ValueError, match="accepted: dates, long"):
        load_pairs("builtin:weather")


def test_file_pairs_split_and_report_bad_rows(tmp_path):
    good = tmp_path / "pairs.tsv"
    rows = [f"source {i}\ttarget {i}" for i in range(40)]
    good.write_text("source\ttarget\n" + "\n".join(rows) + "\n", encoding="utf-8")
    train, validation = load_pairs(f"file:{good}", seed=1)
    assert len(train) == 38 and len(validation) == 2
    assert sorted(train + validation) == sorted((f"source {i}", f"target {i}") for i in range(40))
    bad = tmp_path / "bad.tsv"
    bad.write_text("a\tb\nonly one field\n", encoding="utf-8")
    with pytest.raises(ValueError, match="bad.tsv"):
        load_pairs(f"file:{bad}")
    with pytest.raises(ValueError, match="does not exist"):
        load_pairs(f"file:{tmp_path / 'missing.tsv'}")


def test_tfds_translation_dataset_with_mock_data():
    with tfds.testing.mock_data(num_examples=12):
        train, validation = load_pairs("tfds:ted_hrlr_translate/pt_to_en")
    assert len(train) == 12 and len(validation) == 12
    assert all(isinstance(s, str) and isinstance(t, str) for s, t in train + validation)


class FakeInfo:
    def __init__(self, features, supervised_keys=None):
        self.features = features
        self.supervised_keys = supervised_keys
        self.full_name = "fake/1.0.0"


def test_text_feature_keys_of_any_dataset_with_two_texts():
    translation = tfds.features.Translation(languages=["de", "en"])
    assert text_feature_keys(FakeInfo(translation)) == ("de", "en")
    assert text_feature_keys(FakeInfo(translation, ("en", "de"))) == ("en", "de")
    two_texts = tfds.features.FeaturesDict({"question": tfds.features.Text(),
                                            "id": np.int64,
                                            "answer": tfds.features.Text()})
    assert set(text_feature_keys(FakeInfo(two_texts))) == {"question", "answer"}
    three = tfds.features.FeaturesDict({k: tfds.features.Text() for k in "abc"})
    with pytest.raises(ValueError, match="exactly two text features"):
        text_feature_keys(FakeInfo(three))


def test_unknown_tfds_dataset_is_a_clear_error():
    with pytest.raises(ValueError, match="Unknown or unavailable TFDS dataset 'no_such_corpus'"):
        load_pairs("tfds:no_such_corpus")
