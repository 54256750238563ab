"""profiler: multi-label tagging of customer turns in bank dialogues.

Importing the package registers the tagger with the Hugging Face Auto classes (``profiler.hf_auto``).
"""


def _register() -> None:
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ModuleNotFoundError:  # stdlib-only use of a submodule (the voices check runs with -S)
        return
    from profiler.hf_auto import register_auto_classes

    register_auto_classes()


_register()
