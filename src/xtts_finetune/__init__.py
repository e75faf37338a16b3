"""xtts-finetune: fine-tune XTTS v2 on your own recordings."""
__version__ = "0.1.0"
