"""The bottom layer: frame types, errors, the plug-in registry, the config model, the face-mesh model,
and the run-time building blocks (`src.core.runtime`). It imports nothing else from `src`."""

from src.core.config import AppConfig, load_config
from src.core.errors import UserError
from src.core.registry import Registry

__all__ = ["AppConfig", "Registry", "UserError", "load_config"]
