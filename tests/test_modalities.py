"""`model.modalities` parsing: the names every stage uses for video, audio and text."""

import pytest

from videofusion.contract import modalities


def test_parse_sorts_strips_and_deduplicates():
    assert modalities.parse("video, audio") == (modalities.AUDIO, modalities.VIDEO)
    assert modalities.parse(" text ,video,text,") == ("text", "video")
    assert modalities.parse(",".join(modalities.ALL)) == ("audio", "text", "video")


@pytest.mark.parametrize("spec", ["", " , ", "video,smell", "Video", "video;audio"])
def test_parse_names_the_bad_list_and_the_choices(spec):
    with pytest.raises(ValueError, match=r"model.modalities=.*: expected a comma-separated subset of "
                                         r"video,audio,text"):
        modalities.parse(spec)
