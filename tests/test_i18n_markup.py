"""Every string a person reads goes through Django's translation machinery, so that Italian can be
complete: the templates use {% translate %} / {% blocktranslate %}, the scripts gettext() and friends
from the JavaScript catalogue. A string left outside fails here with its file and line.

Templates: comments, translation blocks, {{ }} and {% %} tags, <code>/<kbd> and elements marked
translate="no" are set aside; whatever text is left, and the title, placeholder, aria-label and alt
attributes (and value on buttons), must hold no word. Filters that write English themselves
(pluralize) or a fixed date format (date, time: use |when) are refused too.
Scripts (static/js/*.js and inline scripts): a string literal that reads like prose must be an
argument of gettext/ngettext/pgettext/npgettext, unless it is plainly code (a selector, a compared
key name, an object key, a class list).

Then pages: the language follows Accept-Language and the switcher, and numbers that code reads
(progress values) stay machine-readable in Italian.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import NamedTuple

import pytest
from django.template.base import tag_re
from django.template.loader import get_template
from django.test import Client

from tests.builders import ledger_run, make_user, make_workflow

ROOT = Path(__file__).resolve().parent.parent

# Words that read the same in Italian, so they may stand outside the machinery. Keep this short.
ALLOWED_WORDS = {
    # units and symbols
    "ms",
    "s",
    "g",
    "Wh",
    "MB",
    "CO₂",
    "Δ",
    "p50",
    "p95",
    "n",
    # "v3": a version number
    "v",
    # the two versions compared in the history ("Compare A → B")
    "A",
    "B",
    # names of formats, algorithms and products
    "CSV",
    "JSONL",
    "XLSX",
    "API",
    "sha256",
    "PSI",
    "Redoc",
    "Swagger",
}
# The product's name is not translated.
ALLOWED_PHRASES = ("Cognitive Factory",)
TRANSLATED_ATTRIBUTES = {"title", "placeholder", "aria-label", "alt"}
BUTTON_INPUTS = {"submit", "button", "reset"}  # an <input> whose value is its visible label
UNTRANSLATED_ELEMENTS = {"code", "kbd", "script", "style"}  # script: checked as JavaScript below
VOID_ELEMENTS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
# Filters whose literal argument is shown to people: the literal must be _("…").
SHOWN_ARGUMENTS = re.compile(r"""\|\s*(default|default_if_none|yesno)\s*:\s*(?!_\()(["'])(.*?)\2""")
ENGLISH_FILTERS = re.compile(r"\|\s*(pluralize|date|time)\b")


def _words(text: str) -> list[str]:
    text = " ".join(text.split())
    for phrase in ALLOWED_PHRASES:
        text = text.replace(phrase, " ")
    return [w for w in re.findall(r"\w+", text) if any(c.isalpha() for c in w) and w not in ALLOWED_WORDS]


# --- templates ---------------------------------------------------------------------------------------


def _mask(source: str) -> tuple[str, list[tuple[int, str]]]:
    """The template with every Django token replaced by blanks (newlines kept, so lines still count),
    the contents of comment and translation blocks dropped; and the problems seen in the tags."""
    out, problems, line, skipping = [], [], 1, None
    for bit in tag_re.split(source):
        if not bit:
            continue
        blank = " " + "\n" * bit.count("\n")
        if bit.startswith("{%"):
            name = (bit[2:-2].split() or [""])[0]
            if skipping:
                skipping = None if name == "end" + skipping else skipping
            elif name in ("comment", "blocktranslate", "blocktrans", "verbatim"):
                skipping = name
            out.append(blank)
        elif bit.startswith("{{"):
            if skipping in ("blocktranslate", "blocktrans") and not re.fullmatch(r"\w+", bit[2:-2].strip()):
                problems.append((line, f"{bit}: a translation block shows plain names only (bind it with `with`)"))
            out.append(blank)
        elif bit.startswith("{#"):
            out.append(blank)
        else:
            out.append(blank if skipping else bit)
        if bit.startswith(("{%", "{{")) and skipping not in ("comment", "verbatim"):
            for match in SHOWN_ARGUMENTS.finditer(bit):
                if _words(match.group(3)):
                    problems.append((line, f"{bit}: write the shown argument as _({match.group(2)}…{match.group(2)})"))
            for match in ENGLISH_FILTERS.finditer(bit):
                fix = "ngettext forms: {% blocktranslate count %}" if match.group(1) == "pluralize" else "|when"
                problems.append((line, f"{bit}: |{match.group(1)} writes English or a fixed format; use {fix}"))
        line += bit.count("\n")
    return "".join(out), problems


class _Visible(HTMLParser):
    """Collects the text and attributes a person reads, and the inline scripts."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[tuple[str, bool]] = []  # (tag, set aside)
        self.found: list[tuple[int, str]] = []
        self.scripts: list[tuple[int, str]] = []  # (line, source) of each inline script
        self.inline = False

    def _aside(self) -> bool:
        return any(aside for _, aside in self.open)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        aside = values.get("translate") == "no"
        if not (aside or self._aside()):
            for name, value in attrs:
                shown = name in TRANSLATED_ATTRIBUTES or (
                    name == "value" and tag == "input" and values.get("type") in BUTTON_INPUTS
                )
                if shown and value and _words(value):
                    self.found.append((self.getpos()[0], f'{name}="{value.strip()}"'))
        if tag == "script":
            self.inline = "src" not in values
            if self.inline:
                self.scripts.append((self.getpos()[0], ""))
        if tag not in VOID_ELEMENTS:
            self.open.append((tag, aside or tag in UNTRANSLATED_ELEMENTS))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID_ELEMENTS:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        # Branches of {% if %} can open an element twice and close it once: close the nearest.
        for k in range(len(self.open) - 1, -1, -1):
            if self.open[k][0] == tag:
                del self.open[k:]
                break

    def handle_data(self, data: str) -> None:
        if self.open and self.open[-1][0] == "script":
            if self.inline:
                line, script = self.scripts[-1]
                self.scripts[-1] = (line, script + data)
            return
        if not self._aside() and _words(data):
            line = self.getpos()[0] + data[: len(data) - len(data.lstrip())].count("\n")
            self.found.append((line, " ".join(data.split())))


def template_problems(path: Path, root: Path = ROOT) -> list[str]:
    masked, tag_problems = _mask(path.read_text(encoding="utf-8"))
    parser = _Visible()
    parser.feed(masked)
    parser.close()
    name = path.relative_to(root)
    problems = [f"{name}:{line}: {text}" for line, text in sorted(tag_problems + parser.found)]
    for line, script in parser.scripts:
        problems += script_problems(script, f"{name} (inline script)", first_line=line)
    return problems


# --- scripts -----------------------------------------------------------------------------------------

TRANSLATING = {"gettext", "ngettext", "pgettext", "npgettext", "gettext_noop"}
SELECTING = {"querySelector", "querySelectorAll", "closest", "matches"}  # their argument is a CSS selector
COMPARING = {"===", "!==", "==", "!="}  # "Enter" in e.key === "Enter" is a key's name
STYLING = {"className", "transform"}  # what is assigned to these is a class list or CSS
CODE_STRINGS = {"use strict": "a directive", "Home": "drawflow's module name"}
KEYWORDS_BEFORE_REGEX = {"return", "typeof", "case", "in", "of", "delete", "void", "throw", "new", "else", "do"}
PUNCTUATION = re.compile(r"===|!==|==|!=|=>|<=|>=|&&|\|\||\?\?|\?\.|\.\.\.|\+\+|--|[-+*/%=<>!&|^~?:;,.()\[\]{}]")
CLASS_LIST = re.compile(r"\s*[a-z]*[-_0-9][a-z0-9_-]*(\s+[a-z]*[-_0-9][a-z0-9_-]*)*\s*")


class Token(NamedTuple):
    kind: str  # str, regex, ident, num, punct
    value: str
    line: int


def _string_end(source: str, i: int, quote: str) -> int:
    i += 1
    while source[i] != quote:
        i += 2 if source[i] == "\\" else 1
    return i


def _tokens(source: str) -> list[Token]:
    tokens: list[Token] = []
    i, line, n = 0, 1, len(source)
    while i < n:
        c = source[i]
        if c.isspace():
            line += c == "\n"
            i += 1
        elif source.startswith("//", i):
            end = source.find("\n", i)
            i = n if end < 0 else end
        elif source.startswith("/*", i):
            end = source.index("*/", i) + 2
            line += source.count("\n", i, end)
            i = end
        elif c in "'\"":
            end = _string_end(source, i, c)
            tokens.append(Token("str", source[i + 1 : end].replace("\\" + c, c), line))
            line += source.count("\n", i, end)
            i = end + 1
        elif c == "`":  # a template literal: its text, with each ${…} as a blank
            j, depth, text = i + 1, 0, []
            while depth or source[j] != "`":
                if source[j] == "\\":
                    text.append(source[j : j + 2])
                    j += 2
                    continue
                if not depth and source.startswith("${", j):
                    depth, j = 1, j + 2
                    text.append(" ")
                    continue
                if depth:
                    depth += {"{": 1, "}": -1}.get(source[j], 0)
                else:
                    text.append(source[j])
                j += 1
            tokens.append(Token("str", "".join(text), line))
            line += source.count("\n", i, j)
            i = j + 1
        elif c == "/" and (
            not tokens
            or (tokens[-1].kind == "punct" and tokens[-1].value not in ")]}")
            or (tokens[-1].kind == "ident" and tokens[-1].value in KEYWORDS_BEFORE_REGEX)
        ):
            j, in_class = i + 1, False
            while in_class or source[j] != "/":
                in_class = (in_class or source[j] == "[") and source[j] != "]"
                j += 2 if source[j] == "\\" else 1
            j += 1
            while j < n and source[j].isalpha():
                j += 1
            tokens.append(Token("regex", source[i:j], line))
            i = j
        elif c.isalpha() or c in "_$":
            word = re.match(r"[\w$]+", source[i:]).group(0)
            tokens.append(Token("ident", word, line))
            i += len(word)
        elif c.isdigit():
            number = re.match(r"[0-9][0-9a-fA-FxXoObBn_.eE]*", source[i:]).group(0)
            tokens.append(Token("num", number, line))
            i += len(number)
        else:
            match = PUNCTUATION.match(source, i)
            symbol = match.group(0) if match else c
            tokens.append(Token("punct", symbol, line))
            i += len(symbol)
    return tokens


def reads_like_prose(text: str) -> bool:
    visible = re.sub(r"&#?\w+;", " ", re.sub(r"<[^>]*(>|$)", " ", text))  # markup and entities are not prose
    if not re.search(r"[^\W\d_]", visible) or CLASS_LIST.fullmatch(visible):
        return False
    return bool(
        re.search(r"\s", visible.strip())
        or re.match(r"\s*[A-Z][a-z]+", visible)
        or visible.rstrip().endswith("…")
        or visible != visible.strip()
    )


def script_problems(source: str, where: str, first_line: int = 1) -> list[str]:
    tokens = _tokens(source)
    problems, frames, target = [], [], None  # frames: (bracket, the function called with "(")
    for k, token in enumerate(tokens):
        before = tokens[k - 1] if k else None
        after = tokens[k + 1] if k + 1 < len(tokens) else None
        if token.kind == "punct":
            if token.value in "([{":
                frames.append((token.value, before.value if token.value == "(" and before else None))
                if token.value == "{" and before and before.value in (")", "=>", "else", "try", "finally", "do"):
                    target = None  # a block starts: a new statement
            elif token.value in ")]}":
                if frames:
                    frames.pop()
                target = None if token.value == "}" else target
            elif token.value == ";":
                target = None
            elif token.value == "=":
                target = before.value if before and before.kind == "ident" else None
            continue
        if token.kind != "str" or not reads_like_prose(token.value):
            continue
        frame = frames[-1] if frames else (None, None)
        if frame[0] == "(" and frame[1] in TRANSLATING | SELECTING:
            continue
        if (before and before.value in COMPARING) or (after and after.value in COMPARING):
            continue
        if frame[0] == "{" and after and after.value == ":" and before and before.value in ("{", ","):
            continue  # an object's key
        if target in STYLING or token.value in CODE_STRINGS:
            continue
        problems.append(f"{where}:{first_line + token.line - 1}: {token.value!r}")
    return problems


# --- the checks on the sources -----------------------------------------------------------------------


def _templates(root: Path = ROOT) -> list[Path]:
    return sorted((root / "templates").rglob("*.html"))


def _scripts(root: Path = ROOT) -> list[Path]:
    return sorted((root / "static" / "js").glob("*.js"))


def untranslated(root: Path = ROOT) -> list[str]:
    """Every user-visible string of the templates and scripts under root left outside the machinery."""
    problems = [p for path in _templates(root) for p in template_problems(path, root)]
    for path in _scripts(root):
        problems += script_problems(path.read_text(encoding="utf-8"), str(path.relative_to(root)))
    return problems


def test_every_visible_string_goes_through_the_translation_machinery():
    problems = untranslated()
    assert not problems, "Wrap these in {% translate %} / gettext():\n" + "\n".join(problems)


@pytest.mark.parametrize(
    "source, expected",
    [
        ("<p>Hello {{ name }}</p>", ["t.html:1: Hello"]),
        ('<p>{% translate "Hello" %} {{ name }}</p>', []),
        (
            "<p>{% blocktranslate trimmed with n=x %}Hi\n{{ n }}{% endblocktranslate %}</p>\n<b>Bye</b>",
            ["t.html:3: Bye"],
        ),
        ("<p>{% blocktranslate %}Hi {{ user.name }}{% endblocktranslate %}</p>", ["plain names only"]),
        ("{# a comment #}{% comment %}Notes{% endcomment %}<code>x y</code><kbd>Enter</kbd>", []),
        ('<input placeholder="Your name" aria-label="{% translate \'Name\' %}">', ['placeholder="Your name"']),
        ('<input type="submit" value="Send"><input name="n" value="Send">', ['value="Send"']),
        ('<select translate="no"><option>production</option></select><p>v{{ v }} · 3 ms</p>', []),
        ('<td>{{ when|date:"Y-m-d" }}</td>', ["use |when"]),
        ("{{ n }} item{{ n|pluralize }}", ["t.html:1: item", "pluralize"]),
        ('{{ who|default:"nobody" }} {{ who|default:_("nobody") }} {{ x|default:"—" }}', ["_("]),
        ('<script>el.textContent = "Not saved";</script>', ["inline script"]),
    ],
)
def test_the_template_check_finds_what_is_left_out(tmp_path, source, expected):
    path = tmp_path / "t.html"
    path.write_text(source)
    problems = template_problems(path, tmp_path)
    assert len(problems) == len(expected), problems
    for problem, wanted in zip(problems, expected, strict=True):
        assert wanted in problem


@pytest.mark.parametrize(
    "source, flagged",
    [
        ('note("Saved the workflow.");', ["Saved the workflow."]),
        ('note(gettext("Saved the workflow."));', []),
        ('x = interpolate(ngettext("%(n)s error", "%(n)s errors", n), {n: n}, true);', []),
        ('label = "Week";', ["Week"]),
        ('li.textContent = "reconnecting…";', ["reconnecting…"]),
        ("box.innerHTML = '<p class=\"muted\">Node deleted.</p>';", ['<p class="muted">Node deleted.</p>']),
        ('html = \'<div class="cf-node-head"><span class="cf-node-title">\' + esc(t) + "</span>";', []),
        ('el.querySelector(".outputs .output_" + k); e.target.matches("input, textarea, select");', []),
        ('if (e.key === "Enter") go(); headers = { "Content-Type": "application/json" };', []),
        ('el.className = "tag " + kind; nodeClass = "cf-node cf-" + group;', []),
        ("const re = /[&<>\"']/g; s = a / b / c; t = `Hello ${name}`;", ["Hello  "]),
        ('// "Not a string"\n/* "Nor this" */ ok("fine");', []),
    ],
)
def test_the_script_check_finds_prose_outside_gettext(source, flagged):
    problems = script_problems(source, "t.js")
    assert [p.split(": ", 1)[1] for p in problems] == [repr(text) for text in flagged]


def test_every_template_compiles():
    """{% translate %} without {% load i18n %}, or a broken blocktranslate, fails here, not in a page."""
    for path in _templates():
        get_template(str(path.relative_to(ROOT / "templates")))


# --- the pages ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_pages_follow_the_browsers_language():
    italian, english = Client(HTTP_ACCEPT_LANGUAGE="it-IT,it;q=0.9"), Client(HTTP_ACCEPT_LANGUAGE="en-GB")
    assert '<html lang="it"' in italian.get("/accounts/login/").content.decode()
    assert '<html lang="en"' in english.get("/accounts/login/").content.decode()
    assert '<html lang="en"' in Client().get("/accounts/login/").content.decode()  # the default
    user = make_user("desi", "designer")
    italian.force_login(user)
    english.force_login(user)
    for path in ("/", "/runs/", "/models/"):
        assert '<html lang="it"' in italian.get(path).content.decode(), path
        assert '<html lang="en"' in english.get(path).content.decode(), path


@pytest.mark.django_db
def test_the_switcher_sets_the_language_without_javascript():
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(make_user("opera", "operator"))
    page = client.get("/runs/?page=1").content.decode()
    form = re.search(r'<form[^>]*action="/i18n/setlang/"[^>]*>(.*?)</form>', page, re.S)
    assert form, "no language form in the top bar"
    assert 'id="language-switcher"' in form.group(0)  # what the Italian browser test picks from
    assert 'name="next" value="/runs/?page=1"' in form.group(1)
    assert re.search(r'<option value="it"[^>]*>Italiano</option>', form.group(1))
    assert re.search(r'<option value="en"[^>]*selected>English</option>', form.group(1))
    assert re.search(r"<noscript><button[^>]*>", form.group(1)), "without JavaScript the form needs a button"
    response = client.post("/i18n/setlang/", {"language": "it", "next": "/runs/?page=1"})
    assert response.status_code == 302 and response["Location"] == "/runs/?page=1"
    assert '<html lang="it"' in client.get("/runs/").content.decode()  # the cookie wins over Accept-Language
    assert re.search(r'<option value="it"[^>]*selected>Italiano</option>', client.get("/runs/").content.decode())


@pytest.mark.django_db
def test_the_javascript_catalogue_loads_before_the_scripts_that_use_it():
    client = Client(HTTP_ACCEPT_LANGUAGE="it")
    client.force_login(make_user("desi", "designer"))
    page = client.get("/").content.decode()
    scripts = re.findall(r'<script src="([^"]+)"', page)
    assert scripts[0] == "/jsi18n/", scripts
    catalogue = client.get("/jsi18n/")
    assert catalogue.status_code == 200 and "javascript" in catalogue["Content-Type"]
    body = catalogue.content.decode()
    assert "globals.gettext" in body and "globals.interpolate" in body and "globals.pgettext" in body
    assert "script-src 'self'" in client.get("/")["Content-Security-Policy"]  # same origin: allowed


@pytest.mark.django_db
def test_numbers_that_code_reads_stay_machine_readable_in_italian():
    """A progress bar's value="0,500" is no number: Italian decimals belong in text, not in attributes."""
    user = make_user("opera", "operator")
    run = ledger_run(make_workflow(user), user, items_total=4, items_done=2, status="running")
    client = Client(HTTP_ACCEPT_LANGUAGE="it")
    client.force_login(user)
    for path in ("/runs/", f"/runs/{run.pk}/"):
        page = client.get(path).content.decode()
        assert '<html lang="it"' in page
        values = re.findall(r'<progress[^>]*\svalue="([^"]*)"', page)
        assert values and all(re.fullmatch(r"[0-9.]+", v) for v in values), (path, values)
        assert "0.500" in values, (path, values)
