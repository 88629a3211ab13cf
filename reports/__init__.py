"""The read side: attribution, rollups, the ROI report and the pages people open.

`api` and `web` are its HTTP edges (registered by the app factory), `cli` its commands.
"""
