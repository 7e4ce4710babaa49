"""Recall models: each learns item-side parameters and scores users from their history."""

from governance.recommendation.recall.base import History, Recall, topk
from governance.recommendation.recall.content import Content
from governance.recommendation.recall.itemknn import ItemKNN
from governance.recommendation.recall.mf import EASE, ImplicitMF
from governance.recommendation.recall.popularity import Popularity
from governance.recommendation.recall.sknn import SKNN

#: name → class, to load an artifact by the name in its params.json
KINDS = {"popularity": Popularity, "itemknn": ItemKNN, "ease": EASE, "als": ImplicitMF, "bpr": ImplicitMF,
         "sknn": SKNN, "content": Content}

__all__ = ["EASE", "KINDS", "SKNN", "Content", "History", "ImplicitMF", "ItemKNN", "Popularity", "Recall", "topk"]
