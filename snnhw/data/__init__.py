"""Datasets (:mod:`snnhw.data.datasets`) and spike encoders (:mod:`snnhw.data.encoders`)."""
from snnhw.data.datasets import DATASETS, EVENT_DATASETS, Dataset, DatasetMissing, load_dataset
from snnhw.data.encoders import ENCODINGS, Encoder

__all__ = ["DATASETS", "EVENT_DATASETS", "Dataset", "DatasetMissing", "load_dataset", "ENCODINGS", "Encoder"]
