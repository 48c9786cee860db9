"""Comment text as safe HTML: #hashtags link to their tag page, @mentions of real accounts to the profile.

Escape first, then link: the text is split on the tokens *before* anything is escaped, every piece (plain text
and the token's own text) goes through ``markupsafe.escape``, and only the ``<a>`` tags this module writes are
markup. So ``<script>`` in a comment stays text, and ``&#39;`` made by escaping can never read as a hashtag.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from urllib.parse import quote

from markupsafe import Markup, escape

# A hashtag: '#' not glued to a word (so "a#b" and URLs' fragments are left alone), then letters/digits/_.
# A mention: '@' not glued to a word (so e-mail addresses are left alone), then a handle as sign-up allows it
# (letters, digits, '_' and '.', not ending in '.').
TOKEN = re.compile(r"(?<![\w#@&/])#(?P<tag>\w{1,64})"
                   r"|(?<![\w@/.])@(?P<handle>[A-Za-z0-9_](?:[A-Za-z0-9_.]{0,62}[A-Za-z0-9_])?)")


def mentioned_handles(text: str) -> set[str]:
    return {m.group("handle").lower() for m in TOKEN.finditer(text or "") if m.group("handle")}


def linkify(text: str, known_handles: Collection[str] | None = None) -> Markup:
    """The text with its tags and (known) mentions as links; everything else escaped."""
    out: list[str] = []
    last = 0
    for match in TOKEN.finditer(text or ""):
        tag, handle = match.group("tag"), match.group("handle")
        if handle is not None and known_handles is not None and handle.lower() not in known_handles:
            continue  # an @word that is nobody: left as text
        out.append(str(escape(text[last:match.start()])))
        if tag is not None:
            out.append(f'<a class="hashtag" href="/tag/{quote(tag.lower())}">#{escape(tag)}</a>')
        else:
            out.append(f'<a class="mention" href="/@{quote(handle.lower())}">@{escape(handle)}</a>')
        last = match.end()
    out.append(str(escape((text or "")[last:])))
    return Markup("".join(out))
