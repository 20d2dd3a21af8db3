"""`python main.py serve`: many avatar sessions from one server (HTTP API, studio and viewer pages).

A `Session` owns one avatar's pipeline, audio, tracks and encoder (start/stop); an `Engine` keeps the
sessions (`local`: in this process); `app.create_app` builds the aiohttp application around an engine.
"""
