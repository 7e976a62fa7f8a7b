"""The feature-map axes in both data formats, against Keras's own layers' conventions."""

import pytest

from kerasdrop._axes import channel_axis, per_channel_shape, spatial_axes


@pytest.mark.parametrize(
    ("data_format", "rank", "channels", "spatial"),
    [
        ("channels_last", 2, 1, ()),
        ("channels_first", 2, 1, ()),  # (batch, units): the units are last in both formats
        ("channels_last", 3, 2, (1,)),
        ("channels_first", 3, 1, (2,)),
        ("channels_last", 4, 3, (1, 2)),
        ("channels_first", 4, 1, (2, 3)),
        ("channels_last", 5, 4, (1, 2, 3)),
        ("channels_first", 5, 1, (2, 3, 4)),
    ],
)
def test_channel_and_spatial_axes(data_format, rank, channels, spatial):
    assert channel_axis(data_format, rank) == channels
    assert spatial_axes(data_format, rank) == spatial


def test_per_channel_shape_keeps_the_batch_and_the_channels():
    assert per_channel_shape((8, 5, 6, 3), "channels_last") == (8, 1, 1, 3)
    assert per_channel_shape((8, 3, 5, 6), "channels_first") == (8, 3, 1, 1)
    assert per_channel_shape((8, 7, 3), "channels_last") == (8, 1, 3)
    assert per_channel_shape((8, 3, 4, 5, 6), "channels_first") == (8, 3, 1, 1, 1)
    assert per_channel_shape((None, 5, 3), "channels_last") == (None, 1, 3)
