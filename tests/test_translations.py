"""The Italian catalogues are complete and current: every entry translated, none fuzzy, placeholders
kept, and no string in the code that the catalogues do not hold (makemessages run on a copy of the
sources finds nothing new)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LOCALE = ROOT / "locale" / "it" / "LC_MESSAGES"
DOMAINS = ("django", "djangojs")
PLACEHOLDER = re.compile(r"%\([a-z_0-9]+\)[sdfr]|%[sdf]|\{[a-z_0-9]*\}")


def _unquote(line: str) -> str:
    body = line[line.index('"') + 1:line.rindex('"')]
    return bytes(body, "utf-8").decode("unicode_escape").encode("latin-1").decode("utf-8")


def parse_po(path: Path) -> list[dict]:
    """A .po file as entries: msgctxt, msgid, msgid_plural, msgstr (list), flags, line."""
    entries, current, field = [], None, None
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line:
            if current:
                entries.append(current)
            current, field = None, None
            continue
        if line.startswith("#~"):
            continue  # obsolete entries are not shown to anyone
        current = current or {"msgctxt": None, "msgid": "", "msgid_plural": None, "msgstr": {}, "flags": set(),
                              "line": number}
        if line.startswith("#,"):
            current["flags"].update(f.strip() for f in line[2:].split(","))
        elif line.startswith("#"):
            continue
        elif line.startswith("msgctxt"):
            field, current["msgctxt"] = "msgctxt", _unquote(line)
        elif line.startswith("msgid_plural"):
            field, current["msgid_plural"] = "msgid_plural", _unquote(line)
        elif line.startswith("msgid"):
            field, current["msgid"] = "msgid", _unquote(line)
        elif line.startswith("msgstr["):
            index = int(line[7:line.index("]")])
            field = ("msgstr", index)
            current["msgstr"][index] = _unquote(line)
        elif line.startswith("msgstr"):
            field = ("msgstr", 0)
            current["msgstr"][0] = _unquote(line)
        elif line.startswith('"'):
            if isinstance(field, tuple):
                current["msgstr"][field[1]] += _unquote(line)
            else:
                current[field] = (current[field] or "") + _unquote(line)
    if current:
        entries.append(current)
    return [e for e in entries if e["msgid"]]  # the header entry has an empty msgid


@pytest.mark.parametrize("domain", DOMAINS)
def test_every_italian_entry_is_translated_and_none_is_fuzzy(domain):
    path = LOCALE / f"{domain}.po"
    assert path.exists(), f"{path} is missing: run `make translations` and translate it"
    entries = parse_po(path)
    assert entries, f"{path} holds no entries"
    untranslated = [f"{path.name}:{e['line']} {e['msgid']!r}" for e in entries
                    if not e["msgstr"] or any(not s.strip() for s in e["msgstr"].values())]
    fuzzy = [f"{path.name}:{e['line']} {e['msgid']!r}" for e in entries if "fuzzy" in e["flags"]]
    assert not untranslated, f"{len(untranslated)} untranslated:\n" + "\n".join(untranslated[:40])
    assert not fuzzy, f"{len(fuzzy)} fuzzy (check the translation, then drop the flag):\n" + "\n".join(fuzzy[:40])


@pytest.mark.parametrize("domain", DOMAINS)
def test_translations_keep_every_placeholder(domain):
    path = LOCALE / f"{domain}.po"
    if not path.exists():
        pytest.fail(f"{path} is missing")
    wrong = []
    for e in parse_po(path):
        wanted = sorted(PLACEHOLDER.findall(e["msgid"] + (e["msgid_plural"] or "")))
        for index, text in e["msgstr"].items():
            got = sorted(PLACEHOLDER.findall(text))
            source = e["msgid"] if index == 0 or not e["msgid_plural"] else e["msgid_plural"]
            expected = sorted(PLACEHOLDER.findall(source))
            if set(got) != set(expected) and set(got) != set(wanted):
                wrong.append(f"{path.name}:{e['line']} {e['msgid']!r}: {expected} vs {got}")
    assert not wrong, "placeholders changed:\n" + "\n".join(wrong[:40])


@pytest.mark.skipif(shutil.which("xgettext") is None, reason="GNU gettext is needed to extract messages")
def test_the_catalogues_hold_every_string_of_the_code(tmp_path):
    """makemessages on a copy of the sources adds no msgid the committed catalogues lack."""
    copy = tmp_path / "src"
    for name in ("manage.py", "factory", "workflows", "templates", "static", "locale"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, copy / name, ignore=shutil.ignore_patterns("vendor", "__pycache__", "*.mo"))
        else:
            copy.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, copy / name)
    for domain in DOMAINS:
        subprocess.run([sys.executable, "manage.py", "makemessages", "-l", "it", "-d", domain, "--no-obsolete",
                        "--no-location"], cwd=copy, check=True, capture_output=True)
    missing = []
    for domain in DOMAINS:
        have = {(e["msgctxt"], e["msgid"]) for e in parse_po(LOCALE / f"{domain}.po")}
        fresh = {(e["msgctxt"], e["msgid"]) for e in parse_po(copy / "locale" / "it" / "LC_MESSAGES" / f"{domain}.po")}
        missing += [f"{domain}: {msgid!r}" + (f" (context {ctx!r})" if ctx else "") for ctx, msgid in sorted(
            fresh - have, key=str)]
    assert not missing, (f"{len(missing)} strings of the code are not in locale/it (run `make translations`, then "
                         "translate them):\n" + "\n".join(missing[:60]))
