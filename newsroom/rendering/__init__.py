"""Rendering: campaign templates to the exact text each channel will publish."""

from .hashtags import HashtagProblem, check_hashtag
from .measure import Measurement, measure_text
from .render import RenderContext, render_occurrence, render_post
from .templates import make_environment

__all__ = [
    "HashtagProblem",
    "Measurement",
    "RenderContext",
    "check_hashtag",
    "make_environment",
    "measure_text",
    "render_occurrence",
    "render_post",
]
