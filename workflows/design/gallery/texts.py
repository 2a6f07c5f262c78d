"""The gallery's texts as msgids, so that makemessages (which reads Python, not JSON) extracts them:
each template's name and description and its nodes' labels, in the JSON files' English. The gallery
translates them for a reader whose language has no variant of the template (gallery.in_language); a
variant's texts (the Italian ones) are data in the JSON file, not msgids. tests/test_i18n_python.py
fails when a JSON file holds an English text this list lacks, so edit both together.
"""

from __future__ import annotations

from django.utils.translation import gettext_noop

MSGIDS = frozenset({
    # catalogue-enrichment
    gettext_noop("Catalogue enrichment"),
    gettext_noop("Enrich product descriptions: classify each product into a category, extract attributes (brand, "
                 "prices, links), write a one-sentence summary, and export the enriched catalogue as JSONL."),
    gettext_noop("Products"),
    gettext_noop("Category"),
    gettext_noop("Attributes"),
    gettext_noop("One-line summary"),
    gettext_noop("Results"),
    gettext_noop("Catalogue file"),
    # contract-review
    gettext_noop("Contract review"),
    gettext_noop("Read contracts: extract the parties, dates, amounts, IBAN and VAT numbers, summarise them, and "
                 "flag risky clauses (unlimited liability, automatic renewal, penalties) for a legal reviewer. "
                 "English and Italian."),
    gettext_noop("Contracts"),
    gettext_noop("Parties, dates, amounts"),
    gettext_noop("Summarise"),
    gettext_noop("Risky clauses?"),
    gettext_noop("Flag for review"),
    gettext_noop("Legal review"),
    gettext_noop("Results"),
    # help-desk-answers
    gettext_noop("Help-desk answers"),
    gettext_noop("Draft answers to help-desk requests: classify the intent, embed the request for retrieval and "
                 "similarity, let the large model draft an answer in the customer's language, and have a human "
                 "approve it before it is sent."),
    gettext_noop("Requests in"),
    gettext_noop("Intent"),
    gettext_noop("Embed"),
    gettext_noop("Draft an answer"),
    gettext_noop("Approve answer"),
    gettext_noop("Answers"),
    # fatture-passive
    gettext_noop("Incoming invoices"),
    gettext_noop("Check incoming Italian e-invoices (FatturaPA XML or signed .p7m) before they are registered: the "
                 "supplier's VAT number, total = taxable amount + VAT, the VAT of each rate, a due date, a valid "
                 "IBAN, the signature. Clean invoices go to the 'to register' export; the doubtful ones to a "
                 "person, with the reason."),
    gettext_noop("VAT numbers, IBAN, amounts, dates"),
    gettext_noop("Checks passed?"),
    gettext_noop("Accounts check"),
    gettext_noop("To register"),
    gettext_noop("Checked by a person"),
    # ticket-triage
    gettext_noop("Ticket triage"),
    gettext_noop("Classify incoming support tickets (English or Italian) by zero-shot label descriptions and route "
                 "by confidence. Confident tickets go straight to extraction and a summary; only the uncertain "
                 "ones ask the large model for a label and then a human, before joining the same extraction and "
                 "summary."),
    gettext_noop("Tickets in"),
    gettext_noop("Classify topic"),
    gettext_noop("By confidence"),
    gettext_noop("Ask the large model"),
    gettext_noop("Human check"),
    gettext_noop("Extract details"),
    gettext_noop("Summarise"),
    gettext_noop("Results"),
})
