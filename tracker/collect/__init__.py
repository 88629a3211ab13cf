"""The collector: the snippet, page views, identify, and the server-side events API.

`views` and `snippet` are its HTTP edges (registered by the app factory); the rest is plain
Python that the command line also uses without Flask.
"""
