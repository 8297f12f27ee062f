"""Captioning family: image encoder, attention decoder, in-graph image decoding and decoding."""

from seqzoo.zoo.models.captioning.captioning_serving_module import CaptioningServingModule
from seqzoo.zoo.models.captioning.image_captioner import ImageCaptioner
from seqzoo.zoo.models.captioning.image_encoder import ImageEncoder

__all__ = ["CaptioningServingModule", "ImageCaptioner", "ImageEncoder"]
