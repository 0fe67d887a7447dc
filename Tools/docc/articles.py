#!/usr/bin/env python3
"""Writes the DocC articles of Sources/Hush/Hush.docc from Docs/usage.md (the guide stays the one
source; its code blocks are compiled by Tests/HushTests/Docs/UsageGuideTests.swift, which also
checks the articles' blocks). Run from anywhere after editing the guide:  Tools/docc/articles.py
"""
import pathlib
import re

root = pathlib.Path(__file__).resolve().parents[2]
guide = (root / "Docs/usage.md").read_text()
catalog = root / "Sources/Hush/Hush.docc"

sections = {}
for part in re.split(r"^## ", guide, flags=re.M)[1:]:
    title, body = part.split("\n", 1)
    number, name = title.split(". ", 1)
    sections[int(number)] = (name.strip(), body.strip("\n"))

# Names in `code voice` that become DocC symbol links (a broken one fails Tools/docc/check.sh).
linked = {
    "InMemorySignalProtocolStore", "SignedPreKeyStore", "SignalProtocolError", "SignalMessage", "SessionStore",
    "SessionRecordError", "SenderKeyStore", "PreKeyStore", "PreKeySignalMessage", "IdentityKeyStore", "CipherSuite",
}


def linkify(text):
    out, in_code = [], False
    for line in text.split("\n"):
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code:
            line = re.sub(r"(?<!`)`([A-Z][A-Za-z]*)`(?!`)",
                          lambda m: f"``{m.group(1)}``" if m.group(1) in linked else m.group(0), line)
        out.append(line)
    return "\n".join(out)


articles = [
    ("GettingStarted", "Getting started", "Make a device, start a session, exchange messages and handle errors.", [1, 2, 3]),
    ("SessionsAndConcurrency", "Storing sessions and concurrency",
     "Persist session records and call Hush from concurrent code.", [4, 5]),
    ("GroupsWithSenderKeys", "Groups with sender keys", "Send one encryption to every member of a group.", [6]),
    ("NativeSuiteAndEnvelopes", "The native suite and sealed envelopes",
     "Use the hush-1 suite, and hide the sender from the server.", [7]),
    ("ReproducibleTests", "Randomness and reproducible tests",
     "Inject randomness so that every byte of a test is reproducible.", [8]),
]
for name, title, abstract, numbers in articles:
    text = f"# {title}\n\n{abstract}\n\n<!-- Generated from Docs/usage.md by Tools/docc/articles.py: edit the guide, then rerun it. -->\n\n"
    if name == "GettingStarted":
        text += ("## Overview\n\nEvery example in these articles is compiled and run by the test suite "
                 "(`Tests/HushTests/Docs/UsageGuideTests.swift` checks that each code block appears there, line for "
                 "line). `import Hush` is the only import you need: it re-exports the primitives (`HushCrypto`).\n\n")
    for number in numbers:
        heading, body = sections[number]
        text += f"## {heading}\n\n{linkify(body)}\n\n"
    (catalog / f"{name}.md").write_text(text.rstrip() + "\n")
