"""Sizes every part agrees on: the stored columns' lengths and what a visitor id may hold.

The collector and the webhooks cut or refuse input to these before writing; the data model
declares its columns with them. Limits that one module alone enforces (body sizes, batch sizes)
stay at the top of that module.
"""

from __future__ import annotations

import re

URL_LENGTH = 2000
UTM_LENGTH = 255
TITLE_LENGTH = 512
USER_AGENT_LENGTH = 512
EMAIL_LENGTH = 254
EXTERNAL_ID_LENGTH = 128
VISITOR_KEY_LENGTH = 64
# A visitor id as the snippet writes it (and stores pass it back): printable ASCII, no spaces.
VISITOR_KEY = re.compile(rf"[\x21-\x7e]{{1,{VISITOR_KEY_LENGTH}}}")
