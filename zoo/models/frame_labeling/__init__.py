"""Frame-labeling family: videos in, one label per frame out (temporal action segmentation)."""

from seqzoo.zoo.models.frame_labeling.frame_encoder import FrameEncoder  # noqa: F401
from seqzoo.zoo.models.frame_labeling.frame_labeler import FrameLabeler  # noqa: F401
