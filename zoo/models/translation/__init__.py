"""Translation family: sequence to sequence with attention, in-graph tokenizers and decoding."""

from seqzoo.zoo.models.translation.seq2seq_translator import Seq2SeqTranslator
from seqzoo.zoo.models.translation.translation_serving_module import TranslationServingModule
from seqzoo.zoo.models.translation.translation_tokenizer import TranslationTokenizer

__all__ = ["Seq2SeqTranslator", "TranslationServingModule", "TranslationTokenizer"]
