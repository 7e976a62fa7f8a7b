"""The axes of feature maps in either data format: the one place that knows ``channels_first`` from
``channels_last``. Tensors are batch first; a rank-2 tensor ``(batch, units)`` has its units last in both formats."""


def channel_axis(data_format, rank):
    """The channel (unit) axis of a rank-``rank`` tensor: 1 for ``channels_first`` feature maps, else the last."""
    return 1 if data_format == "channels_first" and rank >= 3 else rank - 1


def spatial_axes(data_format, rank=4):
    """The spatial axes of a rank-``rank`` feature map: every axis but the batch and the channels."""
    channels = channel_axis(data_format, rank)
    return tuple(axis for axis in range(1, rank) if axis != channels)


def per_channel_shape(shape, data_format):
    """``shape`` with every spatial axis set to 1: one value per (sample, channel), shared over the positions."""
    channels = channel_axis(data_format, len(shape))
    return tuple(size if axis in (0, channels) else 1 for axis, size in enumerate(shape))
