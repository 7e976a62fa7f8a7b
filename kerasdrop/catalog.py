"""Every variant kerasdrop implements, with its family and paper: what `kerasdrop list` prints."""

from typing import NamedTuple


class Variant(NamedTuple):
    names: tuple  # public names (layer, and cell where there is one)
    family: str
    summary: str
    paper: str
    link: str


VARIANTS = (
    Variant(
        ("Dropout",),
        "standard",
        "Bernoulli dropout, inverted or weight scaling",
        "Hinton et al. 2012; Srivastava et al. 2014",
        "https://arxiv.org/abs/1207.0580",
    ),
    Variant(
        ("GaussianDropout",),
        "standard",
        "multiplicative N(1, rate/keep) noise",
        "Srivastava et al. 2014, §10",
        "https://jmlr.org/papers/v15/srivastava14a.html",
    ),
    Variant(
        ("StochasticDropout",),
        "standard",
        "dropout with a rate drawn per call",
        "Park & Kwak 2016",
        "https://doi.org/10.1007/978-3-319-54184-6_12",
    ),
    Variant(
        ("SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D"),
        "standard",
        "drops whole channels",
        "Tompson et al. 2015",
        "https://arxiv.org/abs/1411.4280",
    ),
    Variant(
        ("DropPath", "StochasticDepth"),
        "standard",
        "stochastic depth: drops a residual branch's output per sample",
        "Huang et al. 2016",
        "https://arxiv.org/abs/1603.09382",
    ),
    Variant(
        ("DropConnectDense", "DropConnectConv2D"),
        "weight noise",
        "drops weights instead of units",
        "Wan et al. 2013",
        "https://proceedings.mlr.press/v28/wan13.html",
    ),
    Variant(
        ("StandoutDense",),
        "weight noise",
        "keep probability learned from the pre-activation",
        "Ba & Frey 2013",
        "https://papers.nips.cc/paper/5032-adaptive-dropout-for-training-deep-neural-networks",
    ),
    Variant(
        ("FastDropoutDense",),
        "weight noise",
        "Gaussian approximation of dropout, no sampling of masks",
        "Wang & Manning 2013",
        "https://proceedings.mlr.press/v28/wang13a.html",
    ),
    Variant(
        ("VariationalDense",),
        "learned noise",
        "Gaussian dropout with learned rates and a KL term",
        "Kingma, Salimans & Welling 2015",
        "https://arxiv.org/abs/1506.02557",
    ),
    Variant(
        ("SparseVariationalDense", "SparseVariationalConv2D"),
        "learned noise",
        "per-weight learned rates that prune weights",
        "Molchanov, Ashukha & Vetrov 2017",
        "https://arxiv.org/abs/1701.05369",
    ),
    Variant(
        ("ConcreteDropout", "ConcreteSpatialDropout2D"),
        "learned noise",
        "wrapper learning its dropout rate through a relaxed mask",
        "Gal, Hron & Kendall 2017",
        "https://arxiv.org/abs/1705.07832",
    ),
    Variant(
        ("MaxPoolingDropout2D",),
        "convolutional",
        "dropout before max pooling, probabilistic weighted pooling",
        "Wu & Gu 2015",
        "https://arxiv.org/abs/1512.01400",
    ),
    Variant(
        ("AvgPoolingDropout2D",),
        "convolutional",
        "dropout before average pooling",
        "Wu & Gu 2015",
        "https://arxiv.org/abs/1512.01400",
    ),
    Variant(
        ("MaxDrop2D",),
        "convolutional",
        "drops the strongest activations",
        "Park & Kwak 2016",
        "https://doi.org/10.1007/978-3-319-54184-6_12",
    ),
    Variant(
        ("Cutout",),
        "convolutional",
        "masks random squares of the input image",
        "DeVries & Taylor 2017",
        "https://arxiv.org/abs/1708.04552",
    ),
    Variant(
        ("DropBlock2D",),
        "convolutional",
        "drops contiguous blocks of feature maps",
        "Ghiasi, Lin & Le 2018",
        "https://arxiv.org/abs/1810.12890",
    ),
    Variant(
        ("VariationalLSTM", "VariationalLSTMCell", "VariationalGRU", "VariationalGRUCell"),
        "recurrent",
        "input and recurrent masks fixed over a sequence",
        "Gal & Ghahramani 2016",
        "https://arxiv.org/abs/1512.05287",
    ),
    Variant(
        ("RNNDropLSTM", "RNNDropLSTMCell"),
        "recurrent",
        "per-sequence mask on the LSTM cell state",
        "Moon et al. 2015",
        "https://doi.org/10.1109/ASRU.2015.7404775",
    ),
    Variant(
        ("SemeniutaLSTM", "SemeniutaLSTMCell", "SemeniutaGRU", "SemeniutaGRUCell"),
        "recurrent",
        "dropout on the candidate update only",
        "Semeniuta, Severyn & Barth 2016",
        "https://arxiv.org/abs/1603.05118",
    ),
    Variant(
        ("ZoneoutLSTM", "ZoneoutLSTMCell", "ZoneoutGRU", "ZoneoutGRUCell"),
        "recurrent",
        "state units keep their previous values at random",
        "Krueger et al. 2017",
        "https://arxiv.org/abs/1606.01305",
    ),
    Variant(
        ("StructuredBayesianPruning",),
        "compression",
        "log-normal unit noise that switches units off",
        "Neklyudov et al. 2017",
        "https://arxiv.org/abs/1705.07283",
    ),
    Variant(
        ("MCDropout",),
        "uncertainty",
        "Monte Carlo dropout predictor",
        "Gal & Ghahramani 2016",
        "https://arxiv.org/abs/1506.02142",
    ),
    Variant(
        (
            "acquisition.bald",
            "acquisition.max_entropy",
            "acquisition.variation_ratio",
            "acquisition.mean_std",
        ),
        "active learning",
        "which pool inputs to label next, from MC dropout samples",
        "Gal, Islam & Ghahramani 2017",
        "https://arxiv.org/abs/1703.02910",
    ),
    Variant(
        ("acquisition.margin",),
        "active learning",
        "the negated margin of the two most probable classes",
        "Scheffer, Decomain & Wrobel 2001",
        "https://doi.org/10.1007/3-540-44816-0_31",
    ),
    Variant(
        ("acquisition.batch_bald",),
        "active learning",
        "a batch chosen by its joint mutual information with the weights",
        "Kirsch, van Amersfoort & Gal 2019",
        "https://arxiv.org/abs/1906.08158",
    ),
)


def format_table():
    """The catalogue as text grouped by family: the public names of a variant, then what it does and its paper."""
    lines = []
    for family in dict.fromkeys(variant.family for variant in VARIANTS):
        lines.append(f"[{family}]")
        for variant in (variant for variant in VARIANTS if variant.family == family):
            lines.append(f"  {', '.join(variant.names)}")
            summary = variant.summary[0].upper() + variant.summary[1:]
            lines.append(f"      {summary}. {variant.paper} ({variant.link})")
    return "\n".join(lines)


def public_names():
    """Every public name listed in the catalogue."""
    return {name for variant in VARIANTS for name in variant.names}
