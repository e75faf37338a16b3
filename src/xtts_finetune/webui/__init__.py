"""The Gradio web UI (`xtts-finetune ui`): app.py builds the page, jobs.py runs long work in the background."""
