"""Rendering: campaign templates to the exact text each channel will publish.

How long a text is for a network is the channel's to say: :func:`newsroom.channels.measure_text`.
"""

from .hashtags import HashtagProblem, check_hashtag
from .render import RenderContext, render_occurrence, render_post
from .templates import make_environment, shared_environment

__all__ = [
    "HashtagProblem",
    "RenderContext",
    "check_hashtag",
    "make_environment",
    "render_occurrence",
    "render_post",
    "shared_environment",
]
