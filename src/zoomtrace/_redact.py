"""URLs as they may be shown: without the password of their userinfo, nor the values of secret parameters.

Store URLs (``--store``) and sink URLs (``sink=``, ``$ZOOMTRACE_SINK``) can hold credentials; every error,
log line and file that quotes one quotes ``redacted(url)``.
"""

from __future__ import annotations

import re
from typing import Final

#: ``scheme://userinfo@``: the userinfo runs to the last ``@``, so a password holding an unescaped ``@``,
#: ``/`` or ``?`` is still hidden whole (hiding a little more than needed is harmless).
USERINFO: Final = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>.*)@")
#: Query parameters whose value is a secret.
SECRET_PARAM: Final = re.compile(r"(?i)([?&][^=&#]*(?:pass|secret|token|key)[^=&#]*=)[^&#]*")
HIDDEN: Final = "***"


def redacted(url: str) -> str:
    """``url`` without its password (nor secret query parameters): the only form of a URL to show.

    Works on any text, valid URL or not, so that errors about a bad URL can quote it.
    """
    match = USERINFO.match(url)
    if match is not None:
        user, colon, _password = match["userinfo"].partition(":")
        if colon:
            url = f"{match['scheme']}{user}:{HIDDEN}@{url[match.end() :]}"
    return SECRET_PARAM.sub(rf"\g<1>{HIDDEN}", url)
