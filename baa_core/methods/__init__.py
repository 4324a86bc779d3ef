"""The methods, one file each, registered once in ``METHODS`` (see ``base.py``).

Every module in this package is imported here, so a new method is one new file: nothing else to edit.
"""
import importlib
import pkgutil

from .base import METHODS, Method, Phase, TrainConfig, color, get_method, label, method_for_model, operating_point, ordered

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["METHODS", "Method", "Phase", "TrainConfig", "color", "get_method", "label", "method_for_model",
           "operating_point", "ordered"]
