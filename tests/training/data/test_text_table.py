"""read_text_table: delimiters, optional header, and bad rows reported with line numbers."""

import pytest

from seqzoo.training.data.text_table import read_text_table


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_tsv_with_header_in_any_column_order(tmp_path):
    path = _write(tmp_path, "d.tsv", "id\tlabel\ttext\n1\tpos\tgreat, fun film\n2\tneg\tdull\n")
    assert read_text_table(path) == {"text": ["great, fun film", "dull"], "label": ["pos", "neg"]}


def test_csv_without_header_uses_positions_and_quotes(tmp_path):
    path = _write(tmp_path, "d.csv", '"good, really good",positive\nbad,negative\n')
    assert read_text_table(path) == {"text": ["good, really good", "bad"],
                                     "label": ["positive", "negative"]}


def test_other_extension_sniffs_the_delimiter_and_custom_columns(tmp_path):
    path = _write(tmp_path, "pairs.txt", "source;target\nhallo welt;hello world\nja;yes\n")
    assert read_text_table(path, columns=("source", "target")) == {
        "source": ["hallo welt", "ja"], "target": ["hello world", "yes"]}


def test_bad_rows_are_all_reported_with_line_numbers(tmp_path):
    text = ("text,label\n"
            "fine,pos\n"
            "too,many,fields\n"          # line 3
            ",neg\n"                     # line 4: empty text
            '"spans\ntwo lines",pos\n'   # lines 5-6: valid
            "missing label\n"            # line 7
            "ok,neg\n")
    path = _write(tmp_path, "d.csv", text)
    with pytest.raises(ValueError) as info:
        read_text_table(path)
    message = str(info.value)
    assert "3 bad row(s)" in message
    assert "line 3: 3 field(s), expected 2" in message
    assert "line 4: empty text" in message
    assert "line 7: 1 field(s), expected 2" in message
    assert "line 6" not in message and "line 5" not in message


def test_header_missing_a_column_and_missing_file(tmp_path):
    path = _write(tmp_path, "d.csv", "text,score\nfine,1\n")
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['label'\]"):
        read_text_table(path)
    with pytest.raises(ValueError, match="does not exist"):
        read_text_table(tmp_path / "nope.csv")
