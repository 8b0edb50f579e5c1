"""convai-nlp's plugin module: hook implementations only (import-light: names, not imports)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from convai_core.hookspecs import hookimpl

if TYPE_CHECKING:
    from convai_core.registry import Registry


@hookimpl
def convai_register_models(registry: Registry) -> None:
    registry.add(
        "nlp/text_classification",
        "convai_nlp.models.text_classification:TextClassificationModel",
        description="text classification (sentiment, topic...) on a pretrained encoder",
        config="nlp/text_classification",
    )
    registry.add(
        "nlp/token_classification",
        "convai_nlp.models.token_classification:TokenClassificationModel",
        description="token classification (NER) on a pretrained encoder",
        config="nlp/token_classification",
    )
    registry.add(
        "nlp/punctuation_capitalization",
        "convai_nlp.models.punctuation_capitalization:PunctuationCapitalizationModel",
        description="punctuation and capitalization restoration (two token heads)",
        config="nlp/punctuation_capitalization",
    )
    registry.add(
        "nlp/intent_slot",
        "convai_nlp.models.intent_slot:IntentSlotModel",
        description="joint intent classification and slot filling",
        config="nlp/intent_slot",
    )


@hookimpl
def convai_register_modules(registry: Registry) -> None:
    from convai_nlp.backbones import register_backbones

    register_backbones(registry)
    registry.add(
        "nlp/sequence_classifier",
        "convai_nlp.modules.heads:SequenceClassifier",
        description="MLP on the [CLS] (or mean) vector: one class per sequence",
    )
    registry.add(
        "nlp/token_classifier",
        "convai_nlp.modules.heads:TokenClassifier",
        description="MLP on every token vector: one class per token",
    )


@hookimpl
def convai_register_tokenizers(registry: Registry) -> None:
    registry.add(
        "nlp/hf_tokenizer",
        "convai_nlp.tokenizers:HFTokenizer",
        description="Hugging Face fast tokenizer (WordPiece/BPE/Unigram) from tokenizer.json",
    )
    registry.add(
        "nlp/sentencepiece",
        "convai_nlp.tokenizers:SentencePieceTokenizer",
        description="SentencePiece subwords (load a model or train one from text files)",
    )
    registry.add(
        "nlp/char", "convai_nlp.tokenizers:CharTokenizer", description="character vocabulary"
    )
    registry.add(
        "nlp/word", "convai_nlp.tokenizers:WordTokenizer", description="whitespace-word vocabulary"
    )


@hookimpl
def convai_register_datasets(registry: Registry) -> None:
    registry.add(
        "nlp/text_classification",
        "convai_nlp.data.datasets:text_classification_dataset",
        description="sentence<TAB>label lines (NeMo text classification format)",
    )
    registry.add(
        "nlp/token_classification",
        "convai_nlp.data.datasets:token_classification_dataset",
        description="text.txt + labels.txt, one label per word (NeMo token classification)",
    )
    registry.add(
        "nlp/punctuation_capitalization",
        "convai_nlp.data.datasets:punctuation_capitalization_dataset",
        description="text.txt + labels.txt with two-character labels (mark + case), NeMo format",
    )
    registry.add(
        "nlp/intent_slot",
        "convai_nlp.data.datasets:intent_slot_dataset",
        description="NeMo intent/slot files: <split>.tsv + <split>_slots.tsv + dict.*.csv",
    )


@hookimpl
def convai_register_commands(registry: Registry) -> None:
    registry.add(
        "nlp",
        "convai_nlp.cli:nlp_main",
        description="NLP models and data: run a task model on text, fetch real datasets",
    )


@hookimpl
def convai_config_search_path() -> list[str]:
    return ["pkg://convai_nlp.conf"]
