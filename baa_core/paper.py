"""The published figures, as labelled data, and where this project's own measurement of each lives.

Every number here is the *paper's*, quoted from METHODS.md (the BAA abstract, and the BudgetFormer
paper's Table II as reviewers summarised it). Nothing in this module is measured. ``ours`` says which
card row of ours a figure is compared with: a checkpoint card whose ``task`` and ``model_kind`` match,
its sweep ``method``, the row at ``budget`` (None: the method's only or dense row), and the row key
holding the comparable number. ``find_ours`` looks that row up in a list of cards.

Accuracies are stored as fractions (0.821, not 82.1) so they compare directly with sweep rows.
"""
from __future__ import annotations

from dataclasses import dataclass

BAA = ("BAA: Budgeted Attention Allocation", "2605.05697")
BUDGETFORMER = ("BudgetFormer: Adaptive Head Budgeting", "2604.22583")


@dataclass(frozen=True)
class Ours:
    """Which measurement of ours a published figure is compared with."""

    task: str  # card["task"]: synthetic, ag_news, dbpedia14
    method: str  # key of card["sweeps"]: baa, static, posthoc, recovery, dense, budgetformer
    key: str  # row key: accuracy, speedup, est_cost, s_mean, attention_flop_fraction
    budget: float | None = None  # the row at this budget; None = the method's first row
    model_kind: str | None = None  # card["model_kind"]: word or bert; None = either
    command: str = ""  # the command that produces a card with this row
    card_method: str | None = None  # card["method"]: the model the card is about; None = any


@dataclass(frozen=True)
class PaperFigure:
    id: str
    paper: str
    arxiv: str
    setting: str
    metric: str  # what the number is, in words
    value: float
    unit: str  # "%" (value is a fraction), "x", or "" (a plain number)
    source: str
    ours: Ours | None = None
    note: str = ""

    @property
    def url(self) -> str:
        return f"https://arxiv.org/abs/{self.arxiv}"

    def format(self, value: float | None = None) -> str:
        return format_value(self.value if value is None else value, self.unit)


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "%":
        return f"{100 * value:.1f}%"
    if unit == "x":
        return f"{value:.2f}x"
    return f"{value:.3f}"


_ABSTRACT = "abstract (quoted in METHODS.md)"
_TABLE2 = "Table II, via reviewers' summaries (METHODS.md)"
_SYN = "python -m baa_core train --task synthetic --method baa --select --controls --out pretrained/synthetic-baa"
_AG_WORD = ("python -m baa_core compare --task ag_news --data-dir ../shared/data --seeds 0,1,2 --select "
            "--out pretrained/ag_news-word-baa")
_AG_BERT = ("python -m baa_core compare --task ag_news --kind bert --data-dir ../shared/data --seeds 0,1,2 --select "
            "--out pretrained/ag_news-minilm-baa")
_DB_BERT = ("python -m baa_core compare --task dbpedia14 --kind bert --data-dir ../shared/data --seeds 0,1,2 --select "
            "--out pretrained/dbpedia14-minilm-baa")
_AG_BF = ("python -m baa_core train --task ag_news --method budgetformer --select --controls --data-dir ../shared/data "
          "--out pretrained/ag_news-word-budgetformer")
_DB_BF = ("python -m baa_core train --task dbpedia14 --method budgetformer --select --controls --data-dir ../shared/data "
          "--out pretrained/dbpedia14-word-budgetformer")
_MINI = "ours runs all-MiniLM-L6-v2 (6 x 12 heads, d=384), not BERT-Mini (4 x 4, d=256)"
_BF_SIZE = "the paper's encoder: 4 layers x 8 heads; ours is the word-level model of the card"

FIGURES: tuple[PaperFigure, ...] = (
    PaperFigure("baa-synthetic-303", *BAA, "synthetic marked-token task", "accuracy at 0.303 estimated attention cost",
                0.997, "%", _ABSTRACT, Ours("synthetic", "baa", "accuracy", 0.3, command=_SYN),
                "ours: the hard operating point at budget 0.30 (its estimated cost is shown beside it)"),
    PaperFigure("baa-synthetic-504", *BAA, "synthetic marked-token task", "accuracy at 0.504 estimated attention cost",
                1.0, "%", _ABSTRACT, Ours("synthetic", "baa", "accuracy", 0.5, command=_SYN)),
    PaperFigure("baa-agnews-word-acc", *BAA, "AG News, custom word-level transformer, hard-gate adaptation",
                "accuracy at budget 0.50", 0.821, "%", _ABSTRACT,
                Ours("ag_news", "baa", "accuracy", 0.5, "word", _AG_WORD)),
    PaperFigure("baa-agnews-word-speed", *BAA, "AG News, custom word-level transformer, single-thread CPU",
                "speedup at budget 0.50", 1.28, "x", _ABSTRACT, Ours("ag_news", "baa", "speedup", 0.5, "word", _AG_WORD)),
    PaperFigure("baa-agnews-bert-acc", *BAA, "AG News, BERT-Mini, budgeted structural pruning", "accuracy at budget 0.50",
                0.876, "%", _ABSTRACT, Ours("ag_news", "baa", "accuracy", 0.5, "bert", _AG_BERT), _MINI),
    PaperFigure("baa-agnews-bert-speed", *BAA, "AG News, BERT-Mini, budgeted structural pruning", "speedup at budget 0.50",
                1.20, "x", _ABSTRACT, Ours("ag_news", "baa", "speedup", 0.5, "bert", _AG_BERT), _MINI),
    PaperFigure("baa-agnews-bert-posthoc", *BAA, "AG News, BERT-Mini, post-hoc structural baseline",
                "accuracy at budget 0.50", 0.861, "%", _ABSTRACT, Ours("ag_news", "posthoc", "accuracy", 0.5, "bert", _AG_BERT), _MINI),
    PaperFigure("baa-agnews-bert-recovery", *BAA, "AG News, BERT-Mini, post-hoc + one recovery epoch",
                "accuracy at budget 0.50", 0.879, "%", _ABSTRACT, Ours("ag_news", "recovery", "accuracy", 0.5, "bert", _AG_BERT), _MINI),
    PaperFigure("baa-dbpedia-bert-acc", *BAA, "DBpedia14, BERT-Mini, budgeted gates", "accuracy at exact budget 0.50",
                0.974, "%", _ABSTRACT, Ours("dbpedia14", "baa", "accuracy", 0.5, "bert", _DB_BERT), _MINI),
    PaperFigure("baa-dbpedia-bert-dense", *BAA, "DBpedia14, BERT-Mini, dense full attention", "accuracy",
                0.966, "%", _ABSTRACT, Ours("dbpedia14", "dense", "accuracy", None, "bert", _DB_BERT), _MINI),
    PaperFigure("bf-agnews-dense", *BUDGETFORMER, "AG News, dense encoder", "accuracy", 0.9099, "%", _TABLE2,
                Ours("ag_news", "dense", "accuracy", None, "word", _AG_BF, "budgetformer"), _BF_SIZE),
    PaperFigure("bf-agnews-acc", *BUDGETFORMER, "AG News, BudgetFormer", "accuracy", 0.9022, "%", _TABLE2,
                Ours("ag_news", "budgetformer", "accuracy", None, "word", _AG_BF), _BF_SIZE),
    PaperFigure("bf-agnews-s", *BUDGETFORMER, "AG News, BudgetFormer", "mean budget s", 0.212, "", _TABLE2,
                Ours("ag_news", "budgetformer", "s_mean", None, "word", _AG_BF)),
    PaperFigure("bf-agnews-flops", *BUDGETFORMER, "AG News, BudgetFormer", "total FLOPs relative to dense (about 2.7% fewer)",
                0.973, "", _TABLE2, Ours("ag_news", "budgetformer", "total_flop_fraction", None, "word", _AG_BF),
                "both are total FLOPs: ours counts the encoder (attention with the chosen heads, projections of unused "
                "heads skipped, plus the FFN) per input over the dense model's; attention-only FLOPs (the card's "
                "attention_flop_fraction) equal the head fraction by construction and are shown apart"),
    PaperFigure("bf-dbpedia-dense", *BUDGETFORMER, "DBpedia14, dense encoder", "accuracy", 0.9830, "%", _TABLE2,
                Ours("dbpedia14", "dense", "accuracy", None, "word", _DB_BF, "budgetformer"), _BF_SIZE),
    PaperFigure("bf-dbpedia-acc", *BUDGETFORMER, "DBpedia14, BudgetFormer", "accuracy", 0.9859, "%", _TABLE2,
                Ours("dbpedia14", "budgetformer", "accuracy", None, "word", _DB_BF), _BF_SIZE),
    PaperFigure("bf-dbpedia-s", *BUDGETFORMER, "DBpedia14, BudgetFormer", "mean budget s", 0.085, "", _TABLE2,
                Ours("dbpedia14", "budgetformer", "s_mean", None, "word", _DB_BF)),
    PaperFigure("bf-imdb", *BUDGETFORMER, "IMDB, dense vs BudgetFormer", "accuracy (dense 0.8354)", 0.8356, "%", _TABLE2,
                None, "IMDB is not one of this project's tasks"),
    PaperFigure("bf-snli", *BUDGETFORMER, "SNLI, dense vs BudgetFormer", "accuracy (dense 0.7835)", 0.8106, "%", _TABLE2,
                None, "SNLI is not one of this project's tasks"),
    PaperFigure("bf-yelp", *BUDGETFORMER, "Yelp, dense vs BudgetFormer (~20% fewer FLOPs)", "accuracy (dense 0.5810)", 0.6190,
                "%", _TABLE2, None, "Yelp is not one of this project's tasks"),
)


def card_matches(card: dict, ours: Ours) -> bool:
    sweeps = card.get("sweeps")
    if card.get("task") != ours.task or not isinstance(sweeps, dict) or ours.method not in sweeps:
        return False
    if ours.card_method is not None and card.get("method") != ours.card_method:
        return False
    return ours.model_kind is None or card.get("model_kind", "word") == ours.model_kind


def find_row(card: dict, ours: Ours) -> dict | None:
    """The row of ``card`` that ``ours`` points at, or None."""
    if not card_matches(card, ours):
        return None
    from .io.card import finite_number

    rows = [r for r in (card["sweeps"][ours.method] or []) if isinstance(r, dict)]
    if ours.budget is None:
        return rows[0] if rows else None
    for row in rows:
        b = finite_number(row.get("budget"))
        if b is not None and abs(b - ours.budget) < 1e-6:
            return row
    return None


def find_ours(figure: PaperFigure, cards: list[dict], require_value: bool = True) -> tuple[dict, dict] | None:
    """(card, row) of the first card holding the comparable measurement, or None if none does.

    ``require_value=False`` also accepts a matching row whose value is missing (e.g. a card trained with
    ``--latency-batches 0`` has rows without ``speedup``), so a caller can say how to fill it in.
    """
    if figure.ours is None:
        return None
    for card in cards:
        row = find_row(card, figure.ours)
        if row is not None and (row.get(figure.ours.key) is not None or not require_value):
            return card, row
    return None
