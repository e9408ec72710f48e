"""Templates keep their line breaks as a person reads them (newsroom.rendering.templates):
a line of template code that prints nothing vanishes with its break, every other break
stays, and line numbers in errors stay those of the template."""

from __future__ import annotations

import pytest
from jinja2 import TemplateSyntaxError

from newsroom.rendering.render import normalise
from newsroom.rendering.templates import LINE_MARK, drop_code_only_lines, make_environment


def render(source: str, **variables: object) -> str:
    env = make_environment(None)
    return normalise(drop_code_only_lines(env.from_string(source).render(**variables)))


@pytest.mark.parametrize(("source", "variables", "expected"), [
    # the case of issue 14: an endif at the end of a text line kept the link on its own line
    ("…des Magistrats.{% if x %} Gezeichnet.{% endif %}\nhttps://darmstadt.de",
     {"x": False}, "…des Magistrats.\nhttps://darmstadt.de"),
    ("…des Magistrats.{% if x %} Gezeichnet.{% endif %}\nhttps://darmstadt.de",
     {"x": True}, "…des Magistrats. Gezeichnet.\nhttps://darmstadt.de"),
    # tags alone on their lines leave no line, indented or not
    ("A\n{% if x %}\nB\n  {% endif %}\nC", {"x": True}, "A\nB\nC"),
    ("A\n{% if x %}\nB\n{% endif %}\nC", {"x": False}, "A\nC"),
    # a line of text with a condition that prints nothing vanishes
    ("A\n{% if x %}Zusatz{% endif %}\nC", {"x": False}, "A\nC"),
    # an expression printing nothing on its own line vanishes; a blank line written stays
    ("A\n{{ tags }}\n\nC", {"tags": ""}, "A\n\nC"),
    ("A\n\n{{ tags }}", {"tags": "#Tag"}, "A\n\n#Tag"),
    # loops over lines
    ("Hinweise:\n{% for h in hs %}\n– {{ h }}\n{% endfor %}\nEnde", {"hs": ["a", "b"]},
     "Hinweise:\n– a\n– b\nEnde"),
    ("{% for h in hs %}{{ h }}{% if not loop.last %}, {% endif %}{% endfor %}.",
     {"hs": ["a", "b"]}, "a, b."),
    # comments alone on a line, a tag spread over lines, a raw block printed as written
    ("{# Notiz #}\nA\n{% set x = [\n  1,\n  2] %}\nB{{ x | length }}", {}, "A\nB2"),
    ("{% raw %}\n{{ wörtlich }}\n{% endraw %}\nA", {}, "{{ wörtlich }}\nA"),
    # Jinja's own whitespace control still joins lines
    ("A\n{%- if x %} B{% endif %}\nC", {"x": True}, "A B\nC"),
    # line breaks written as CRLF count as line breaks
    ("A\r\n{% if x %}\r\nB\r\n{% endif %}\r\nC", {"x": True}, "A\nB\nC"),
])
def test_line_breaks_as_written(source: str, variables: dict, expected: str) -> None:
    assert render(source, **variables) == expected


def test_the_line_mark_never_reaches_a_post() -> None:
    assert LINE_MARK not in render(f"A{LINE_MARK}\n{{% if x %}}B{{% endif %}}", x=True)


def test_errors_keep_the_template_s_line_numbers() -> None:
    with pytest.raises(TemplateSyntaxError) as raised:
        make_environment(None).from_string("A\n{% if x %}\nB\n{% endfor %}\n")
    assert raised.value.lineno == 4
