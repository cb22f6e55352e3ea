from assistant.answering.citations import sentences_with_markers, with_markers


def test_marker_forms():
    got = sentences_with_markers(
        "Chabon wrote it [1]. It was published in 2002 [1, 2]. See [Source 3]. No marker here."
    )
    assert got == [
        ("Chabon wrote it.", [1]),
        ("It was published in 2002.", [1, 2]),
        ("See.", [3]),
        ("No marker here.", []),
    ]


def test_marker_after_full_stop_belongs_to_the_sentence_before():
    got = sentences_with_markers("Summerland is a novel. [2] It has 500 pages.[1][3]")
    assert got == [("Summerland is a novel.", [2]), ("It has 500 pages.", [1, 3])]


def test_lines_split_and_blank_pieces_dropped():
    assert sentences_with_markers("One [1]\n\n[2]\nTwo [2]") == [("One", [1]), ("Two", [2])]


def test_with_markers():
    assert with_markers("It is 500 pages.", [1, 2]) == "It is 500 pages [1][2]."
    assert with_markers("No stop", [3]) == "No stop [3]"
    assert with_markers("Nothing.", []) == "Nothing."
