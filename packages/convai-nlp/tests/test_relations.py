"""Relation extraction data: ChemProt and SemEval readers, their errors, and the scorer."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from convai_core.errors import ConfigError
from convai_nlp.data.relations import (
    E1_END,
    E1_START,
    E2_END,
    E2_START,
    RelationExample,
    read_relations,
    relation_report,
)
from convai_nlp.errors import DataError

CHEMPROT_LABELS = ["CPR:3", "CPR:4", "CPR:5", "CPR:6", "CPR:9", "false"]

# BLUE's layout: a header, then index, sentence (pair replaced by markers), label.
CHEMPROT = """index\tsentence\tlabel
1001.T1.T5\t@CHEMICAL$ raised the expression of @GENE$ in cultured liver cells.\tCPR:3
1001.T2.T5\tUnlike metformin, @CHEMICAL$ blocked @GENE$ activity at low doses.\tCPR:4
1002.T3.T7\tThe receptor @GENE$ was activated by @CHEMICAL$ in vitro.\tCPR:5
1002.T4.T7\t@CHEMICAL$ acts as an antagonist of @GENE$ in smooth muscle.\tCPR:6
1003.T1.T2\t@GENE$ converts @CHEMICAL$ into its active form.\tCPR:9
1003.T1.T3\t@CHEMICAL$ and @GENE$ were both measured in plasma.\tfalse
1004.T2.T6\tLevels of @CHEM-GENE$ did not change after treatment.\tfalse
1004.T5.T6\tWe saw no link between @GENE$ and @CHEMICAL$ exposure.\tfalse
1005.T1.T9\t@CHEMICAL$ strongly inhibited @GENE$ phosphorylation.\tCPR:4
1005.T2.T9\tDietary @CHEMICAL$ lowered hepatic @GENE$ levels.\tCPR:4
"""

SEMEVAL_LABELS = [
    "Cause-Effect(e1,e2)",
    "Cause-Effect(e2,e1)",
    "Component-Whole(e1,e2)",
    "Component-Whole(e2,e1)",
    "Entity-Origin(e1,e2)",
    "Content-Container(e1,e2)",
    "Instrument-Agency(e2,e1)",
    "Other",
]

# the TSV layout: sentence<TAB>label, tags inline (quotes allowed)
SEMEVAL = """The <e1>storm</e1> caused heavy <e2>flooding</e2> downtown.\tCause-Effect(e1,e2)
"The <e1>rash</e1> came from a <e2>virus</e2>."\tCause-Effect(e2,e1)
A <e1>wheel</e1> of the old <e2>cart</e2> had cracked.\tComponent-Whole(e1,e2)
The <e1>bicycle</e1> needs a new <e2>chain</e2>.\tComponent-Whole(e2,e1)
This <e1>cheese</e1> comes from a small <e2>farm</e2> in the hills.\tEntity-Origin(e1,e2)
The <e1>letters</e1> were kept in a wooden <e2>box</e2>.\tContent-Container(e1,e2)
The <e1>baker</e1> sliced the loaf with a sharp <e2>knife</e2>.\tInstrument-Agency(e2,e1)
The <e1>river</e1> runs past the <e2>station</e2>.\tOther
<e1>Smoke</e1> from the chimney darkened the <e2>ceiling</e2>.\tCause-Effect(e1,e2)
The <e1>museum</e1> bought a new <e2>painting</e2> last year.\tOther
"""

# the layout of SemEval's own TRAIN_FILE.TXT: id<TAB>"sentence", label, comment, empty line
SEMEVAL_BLOCKS = """1\t"The <e1>storm</e1> caused heavy <e2>flooding</e2> downtown."
Cause-Effect(e1,e2)
Comment:

2\t"The <e1>river</e1> runs past the <e2>station</e2>."
Other
Comment: no relation between the two.

3\t"A <e1>wheel</e1> of the old <e2>cart</e2> had cracked."
Component-Whole(e1,e2)
Comment:
"""


def _write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_chemprot_lines(tmp_path: Path) -> None:
    examples = read_relations(_write(tmp_path / "train.tsv", CHEMPROT), labels=CHEMPROT_LABELS)
    assert len(examples) == 10
    assert examples[0] == RelationExample(
        "@CHEMICAL$ raised the expression of @GENE$ in cultured liver cells.", "CPR:3", 2
    )
    assert examples[6].text == "Levels of @CHEM-GENE$ did not change after treatment."
    assert [e.label for e in examples].count("false") == 3
    assert [e.line for e in examples] == list(range(2, 12))
    no_header = _write(tmp_path / "test.tsv", CHEMPROT.split("\n", 1)[1])
    assert read_relations(no_header, fmt="chemprot")[0].line == 1


def test_semeval_tsv_turns_tags_into_markers(tmp_path: Path) -> None:
    examples = read_relations(_write(tmp_path / "train.tsv", SEMEVAL), labels=SEMEVAL_LABELS)
    assert len(examples) == 10
    assert examples[0] == RelationExample(
        f"The {E1_START} storm {E1_END} caused heavy {E2_START} flooding {E2_END} downtown.",
        "Cause-Effect(e1,e2)",
        1,
    )
    assert examples[1].text == "The [E1] rash [/E1] came from a [E2] virus [/E2] ."
    assert examples[8].text.startswith("[E1] Smoke [/E1] from")
    assert all("<e" not in e.text and "</e" not in e.text for e in examples)


def test_semeval_task_file_blocks(tmp_path: Path) -> None:
    examples = read_relations(_write(tmp_path / "TRAIN_FILE.TXT", SEMEVAL_BLOCKS))
    assert [(e.label, e.line) for e in examples] == [
        ("Cause-Effect(e1,e2)", 1),
        ("Other", 5),
        ("Component-Whole(e1,e2)", 9),
    ]
    assert examples[1].text == "The [E1] river [/E1] runs past the [E2] station [/E2] ."
    cut = _write(tmp_path / "cut.txt", SEMEVAL_BLOCKS.split("Other")[0])
    with pytest.raises(DataError, match=r"cut.txt:5: the file ends before the label"):
        read_relations(cut, fmt="semeval")
    unlabelled = _write(tmp_path / "unlabelled.txt", SEMEVAL_BLOCKS.replace("Other\n", ""))
    with pytest.raises(DataError, match=r"unlabelled.txt:5: no label line after the sentence"):
        read_relations(unlabelled)
    with_tab = _write(tmp_path / "tab.txt", SEMEVAL_BLOCKS.replace('2\t"The', '2\tx\t"The'))
    with pytest.raises(DataError, match=r"tab.txt:5: 3 tab-separated column"):
        read_relations(with_tab)


def test_auto_format(tmp_path: Path) -> None:
    chemprot = _write(tmp_path / "a.tsv", CHEMPROT)
    headless = _write(tmp_path / "b.tsv", CHEMPROT.split("\n", 1)[1])
    semeval = _write(tmp_path / "c.tsv", SEMEVAL)
    assert read_relations(chemprot) == read_relations(chemprot, fmt="chemprot")
    assert read_relations(headless) == read_relations(headless, fmt="chemprot")
    assert read_relations(semeval) == read_relations(semeval, fmt="semeval")
    plain = _write(tmp_path / "d.tsv", "a sentence\tpos\nanother one\tneg\n")
    with pytest.raises(
        DataError, match=r"d.tsv: cannot tell .*first 2 .*fmt='chemprot' or fmt='semeval'"
    ):
        read_relations(plain)
    # a wrong explicit format is an error on the first line
    with pytest.raises(DataError, match=r"c.tsv:1: 2 tab-separated column"):
        read_relations(semeval, fmt="chemprot")
    with pytest.raises(ConfigError, match="relation format 'ddi'"):
        read_relations(semeval, fmt="ddi")  # type: ignore[arg-type]


def test_errors_name_file_and_line(tmp_path: Path) -> None:
    chemprot_cases = {
        "columns": ("1.T1.T2\t@CHEMICAL$ binds @GENE$.\n", ":1: 2 tab-separated column"),
        "extra column": ("1\t@CHEMICAL$ binds @GENE$.\tCPR:3\tx\n", ":1: 4 tab-separated"),
        "empty sentence": ("1\t \tCPR:3\n", ":1: empty sentence"),
        "no label": ("1\t@CHEMICAL$ binds @GENE$.\t\n", ":1: no label"),
        "no gene": ("1\t@CHEMICAL$ binds @GENE$.\tCPR:3\n2\t@CHEMICAL$ binds.\tCPR:3\n", ":2: "),
        "unknown label": ("1\t@CHEMICAL$ binds @GENE$.\tCPR:1\n", ":1: unknown label 'CPR:1'"),
        "empty line": ("1\t@CHEMICAL$ binds @GENE$.\tCPR:3\n\n", ":2: empty line"),
    }
    for name, (text, message) in chemprot_cases.items():
        path = _write(tmp_path / f"chemprot {name}.tsv", text)
        with pytest.raises(DataError, match=message) as info:
            read_relations(path, fmt="chemprot", labels=CHEMPROT_LABELS)
        assert path in str(info.value) and "skip_bad" in str(info.value), name
    no_gene = str(tmp_path / "chemprot no gene.tsv")
    with pytest.raises(DataError, match=r"the sentence has no @GENE\$"):
        read_relations(no_gene, fmt="chemprot")
    semeval_cases = {
        "columns": ("The <e1>a</e1> and <e2>b</e2>.\n", ":1: 1 tab-separated column"),
        "no e2": ("The <e1>a</e1> and b.\tOther\n", ":1: the sentence needs one <e2>...</e2>"),
        "two e1": ("<e1>a</e1> <e1>b</e1> <e2>c</e2>\tOther\n", r"found 2 <e1> and 2 </e1>"),
        "reversed": ("The </e1>a<e1> and <e2>b</e2>.\tOther\n", ":1: the sentence needs one <e1>"),
        "empty sentence": ('""\tOther\n', ":1: empty sentence"),
        "unknown label": ("<e1>a</e1> <e2>b</e2>\tMember-Of\n", ":1: unknown label 'Member-Of'"),
    }
    for name, (text, message) in semeval_cases.items():
        path = _write(tmp_path / f"semeval {name}.tsv", text)
        with pytest.raises(DataError, match=message) as info:
            read_relations(path, fmt="semeval", labels=SEMEVAL_LABELS)
        assert path in str(info.value), name
    with pytest.raises(DataError, match="does not exist"):
        read_relations(tmp_path / "missing.tsv")


def test_skip_bad_counts_what_it_skips(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    lines = CHEMPROT.splitlines()
    lines[3] = "1001.T2.T5\tUnlike metformin, @CHEMICAL$ blocked activity.\tCPR:4"  # no gene
    lines[5] = "1002.T4.T7\tonly two columns"
    lines[7] = "1003.T1.T3\t@CHEMICAL$ and @GENE$ were measured.\tCPR:1"  # unknown label
    path = _write(tmp_path / "bad.tsv", "\n".join(lines) + "\n")
    with caplog.at_level(logging.WARNING):
        examples = read_relations(path, labels=CHEMPROT_LABELS, skip_bad=True)
    assert [e.line for e in examples] == [2, 3, 5, 7, 9, 10, 11]
    assert "skipped 3 bad line(s)" in caplog.text and path in caplog.text
    nothing = _write(tmp_path / "nothing.tsv", "1\tno markers here\tfalse\n")
    with pytest.raises(DataError, match="no usable lines"):
        read_relations(nothing, fmt="chemprot", skip_bad=True)


def test_markers_are_known_wordpieces() -> None:
    """An uncased BERT WordPiece vocabulary reads every marker as a few known pieces."""
    from tokenizers import Tokenizer

    from convai_nlp.backbones import backbone_folder

    tokenizer = Tokenizer.from_file(str(backbone_folder("minilm-l6-h384") / "tokenizer.json"))
    text = f"the {E1_START} storm {E1_END} caused {E2_START} floods {E2_END} ; @CHEMICAL$ @GENE$"
    pieces = tokenizer.encode(text, add_special_tokens=False).tokens
    assert "[UNK]" not in pieces
    assert pieces[1:5] == ["[", "e", "##1", "]"]
    assert pieces[6:11] == ["[", "/", "e", "##1", "]"]


def test_relation_report_by_hand() -> None:
    truth = ["A", "A", "B", "none", "none", "B", "A", "none"]
    predicted = ["A", "none", "B", "A", "none", "A", "A", "none"]
    report = relation_report(truth, predicted, negative_label="none")
    # A: tp 2 (items 0, 6), fp 2 (items 3 and 5), fn 1 (item 1 predicted as none)
    # B: tp 1 (item 2), fp 0, fn 1 (item 5 predicted as A)
    assert (report["tp"], report["fp"], report["fn"]) == (3, 2, 2)
    assert report["precision"] == pytest.approx(3 / 5)
    assert report["recall"] == pytest.approx(3 / 5)
    assert report["f1"] == pytest.approx(3 / 5)
    assert report["accuracy"] == pytest.approx(5 / 8)
    assert report["support"] == 5
    assert set(report["per_type"]) == {"A", "B"}
    a, b = report["per_type"]["A"], report["per_type"]["B"]
    assert (a["precision"], a["recall"], a["support"]) == (pytest.approx(0.5), 2 / 3, 3)
    assert a["f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert (b["precision"], b["recall"], b["support"]) == (1.0, 0.5, 2)
    assert b["f1"] == pytest.approx(2 / 3)


def test_negative_predictions_do_not_count() -> None:
    truth = ["CPR:3", "CPR:4", "false", "false"]
    # predicting the negative class everywhere is no prediction at all: P = R = F1 = 0
    silent = relation_report(truth, ["false"] * 4, negative_label="false")
    assert (silent["precision"], silent["recall"], silent["f1"]) == (0.0, 0.0, 0.0)
    assert silent["accuracy"] == 0.5 and silent["fp"] == 0 and silent["fn"] == 2
    # abstaining on one relation lowers recall only; a negative called a relation lowers
    # precision only
    report = relation_report(truth, ["CPR:3", "false", "CPR:4", "false"], negative_label="false")
    assert (report["tp"], report["fp"], report["fn"]) == (1, 1, 1)
    assert report["precision"] == 0.5 and report["recall"] == 0.5
    assert report["per_type"]["CPR:4"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert "false" not in report["per_type"]
    perfect = relation_report(truth, truth, negative_label="false")
    assert perfect["f1"] == 1.0 and perfect["accuracy"] == 1.0
    with pytest.raises(ValueError, match="2 true labels but 1 predictions"):
        relation_report(["a", "b"], ["a"], negative_label="none")
    with pytest.raises(ValueError, match="no items"):
        relation_report([], [], negative_label="none")
