"""Which lorebook (character_book) entries a prompt carries: those whose keys occur in recent messages.

Follows Character Card V2: disabled entries never, `constant` ones always, `selective` ones only when
a secondary key occurs too, keys matched as substrings (case-insensitively unless `case_sensitive`),
inserted in ascending `insertion_order`. Not done: `token_budget`, `recursive_scanning`, regex keys.
"""

from schemas.cards import CharacterBook, LorebookEntry

# Messages scanned when the book does not say (SillyTavern's default).
DEFAULT_SCAN_DEPTH = 2


def _case_sensitive(entry: LorebookEntry) -> bool:
    # SillyTavern keeps its own copy of the flag in the entry's extensions.
    if entry.case_sensitive is not None:
        return entry.case_sensitive
    return bool(entry.extensions.get("case_sensitive"))


def _any_key(keys: list[str], text: str, case_sensitive: bool) -> bool:
    if not case_sensitive:
        text = text.casefold()
        keys = [key.casefold() for key in keys]
    return any(key and key in text for key in keys)


def _triggered(entry: LorebookEntry, text: str) -> bool:
    case_sensitive = _case_sensitive(entry)
    if not _any_key(entry.keys, text, case_sensitive):
        return False
    if entry.selective and entry.secondary_keys:
        return _any_key(entry.secondary_keys, text, case_sensitive)
    return True


def active_entries(book: CharacterBook, recent_messages: list[str]) -> list[LorebookEntry]:
    """The entries to insert, in insertion order, given the messages so far (oldest first)."""
    depth = DEFAULT_SCAN_DEPTH if book.scan_depth is None else book.scan_depth
    window = "\n".join(recent_messages[-depth:]) if depth > 0 else ""
    chosen = [
        entry for entry in book.entries if entry.enabled and (entry.constant or _triggered(entry, window))
    ]
    return sorted(chosen, key=lambda entry: entry.insertion_order)
