"""collapse-bench: measure model collapse in code language models.

Importing this package is cheap on purpose: heavy libraries (torch, transformers,
docker) are imported only by the modules that need them, so `collapse-bench --help`
and the sandbox commands start fast.
"""

__version__ = "0.1.0"
