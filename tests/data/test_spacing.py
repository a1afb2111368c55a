"""The spacing task's data: spaces removed and labelled, restored, long lines cut at word boundaries."""
from rnnlab.data.spacing import restore_spaces, space_positions, strip_spaces, tagged_lines


def test_strip_then_restore_gives_the_line_with_single_spaces():
    for line in ["to be, or not to be", "  a  b\tc ", "word", "x y"]:
        characters, labels = strip_spaces(line)
        assert len(characters) == len(labels) and " " not in characters
        assert restore_spaces(characters, labels) == " ".join(line.split())
    assert strip_spaces("") == ("", [])


def test_labels_mark_the_character_before_each_space():
    assert strip_spaces("ab c de") == ("abcde", [0, 1, 1, 0, 0])
    assert space_positions("ab c de") == {1, 2}
    assert restore_spaces("abc", [1, 1, 1]) == "a b c"     # never a space after the last character


def test_tagged_lines_skip_blank_lines_and_cut_long_ones():
    pieces = tagged_lines("one two three four\n\n  \nfive\n", max_length=8)
    assert [p for p, _ in pieces] == ["onetwo", "three", "four", "five"]
    assert all(len(p) <= 8 and len(p) == len(labels) and labels[-1] == 0 for p, labels in pieces)
    pieces = tagged_lines("ab " + "x" * 10 + " cd", max_length=4)
    assert pieces[1:] == [("xxxx", [0] * 4), ("xxxx", [0] * 4), ("xxcd", [0, 1, 0, 0])]
