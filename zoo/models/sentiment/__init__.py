"""Sentiment family: raw-text classifiers with an in-graph tokenizer and their serving signature."""

from seqzoo.zoo.models.sentiment.masked_global_pooling import MaskedGlobalPooling1D  # noqa: F401
from seqzoo.zoo.models.sentiment.sentiment_classifier import SentimentClassifier  # noqa: F401
from seqzoo.zoo.models.sentiment.sentiment_serving_module import SentimentServingModule  # noqa: F401
from seqzoo.zoo.models.sentiment.word_tokenizer import WordTokenizer  # noqa: F401
