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
        "nlp/question_answering",
        "convai_nlp.models.question_answering:QuestionAnsweringModel",
        description="extractive question answering (SQuAD v1.1/v2.0) on a pretrained encoder",
        config="nlp/question_answering",
    )
    registry.add(
        "nlp/glue",
        "convai_nlp.models.glue:GlueModel",
        description="GLUE/SuperGLUE sentence and sentence-pair tasks, official metrics",
        config="nlp/glue",
    )
    registry.add(
        "nlp/relation_extraction",
        "convai_nlp.models.relation_extraction:RelationExtractionModel",
        description="relation between two marked entities (ChemProt/BLUE, SemEval-2010 Task 8)",
        config="nlp/relation_extraction",
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
        "nlp/span_head",
        "convai_nlp.modules.heads:SpanHead",
        description="start and end scores of an answer span at every token (extractive QA)",
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
        "nlp/glue",
        "convai_nlp.data.glue:glue_dataset",
        description="a GLUE/SuperGLUE task's file in its distributed format (TSV or JSON lines)",
    )
    registry.add(
        "nlp/relations",
        "convai_nlp.data.relations:relation_dataset",
        description="entity-marked sentences + relation label (ChemProt/BLUE TSV, SemEval-2010)",
    )
    registry.add(
        "nlp/squad",
        "convai_nlp.data.squad:squad_dataset",
        description="SQuAD v1.1/v2.0 JSON: question + context windows with answer positions",
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
