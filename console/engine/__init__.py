"""The loopctl engine: supervision, state and the snapshot read model.

Nothing in this package imports Textual, rich or httpx at import time: the headless
faces (`loopctl --once`, `loopctl run`) must not pay for the console.
"""
