"""The catalog's schema, as numbered migrations: a catalog of any earlier version is brought
up to date in order, each step in one transaction."""

from __future__ import annotations

MIGRATIONS: list[tuple[str, str]] = [
    ("0001_initial", """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE files (
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL,
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            hash TEXT,
            status TEXT NOT NULL,          -- indexed | skipped | retry
            reason TEXT,
            tries INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE items (
            id INTEGER PRIMARY KEY,        -- also the key in the vector index
            file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
            kind TEXT NOT NULL,            -- section | image | page
            section TEXT,                  -- paragraph, list, ... for sections
            start_line INTEGER,
            end_line INTEGER,
            page INTEGER,
            headings TEXT NOT NULL DEFAULT '[]',
            text TEXT NOT NULL,            -- section text, OCR text or page text
            content_hash TEXT NOT NULL     -- of what the embedder saw
        );
        CREATE INDEX items_file ON items(file_id);
        CREATE INDEX items_hash ON items(content_hash);
        CREATE TABLE links (
            id INTEGER PRIMARY KEY,
            note_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
            link TEXT NOT NULL,            -- as written, resolved again when files come and go
            target TEXT,                   -- vault path, NULL when unresolved
            reason TEXT,
            page INTEGER,
            line INTEGER NOT NULL,
            col INTEGER NOT NULL,
            caption TEXT,
            headings TEXT NOT NULL,
            context TEXT NOT NULL          -- JSON list of {start, end, text, role}
        );
        CREATE INDEX links_target ON links(target);
        CREATE INDEX links_note ON links(note_id);
        CREATE TABLE embeddings (
            content_hash TEXT NOT NULL,
            signature TEXT NOT NULL,
            vector BLOB NOT NULL,          -- float32
            PRIMARY KEY (content_hash, signature)
        ) WITHOUT ROWID;
        CREATE TABLE extracts (           -- OCR / PDF results by file hash and extractor
            file_hash TEXT NOT NULL,
            extractor TEXT NOT NULL,
            data TEXT NOT NULL,
            PRIMARY KEY (file_hash, extractor)
        ) WITHOUT ROWID;
        CREATE VIRTUAL TABLE items_fts USING fts5(
            text, names, context, tokenize = 'porter unicode61 remove_diacritics 2'
        );
    """),
    ("0002_note_tags", """
        CREATE TABLE tags (
            file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
            tag TEXT NOT NULL COLLATE NOCASE,
            PRIMARY KEY (file_id, tag)
        ) WITHOUT ROWID;
        CREATE INDEX tags_tag ON tags(tag);
    """),
    ("0003_fts_vocabulary", """
        CREATE VIRTUAL TABLE items_vocab USING fts5vocab(items_fts, 'row');
    """),
    # Frontmatter properties, one row per value (a list gives several), for filters such as
    # status:done or ctr>5. Files indexed before this are read once more (their hash is
    # cleared) for their properties and the new keyword fields; OCR and vectors come from the
    # caches, so only what changed in what is embedded (image text without context) is.
    ("0004_note_properties", """
        CREATE TABLE properties (
            file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
            name TEXT NOT NULL COLLATE NOCASE,
            value TEXT NOT NULL,
            number REAL,                   -- the value as a number, when it is one
            PRIMARY KEY (file_id, name, value)
        ) WITHOUT ROWID;
        CREATE INDEX properties_name ON properties(name);
        UPDATE files SET hash = NULL;
    """),
    # Files whose extraction or embedding failed are indexed with what could be read
    # ("partial") and retried with a backoff: retry_at is when the next try may run.
    ("0005_retry_at", """
        ALTER TABLE files ADD COLUMN retry_at REAL NOT NULL DEFAULT 0;
    """),
    # CJK text is indexed as single characters beside its bigrams (text.cjk_grams): every
    # file is read again to rewrite its keyword rows; OCR, PDF text and vectors come from the
    # caches.
    ("0006_cjk_characters", """
        UPDATE files SET hash = NULL;
    """),
    # Deleted rows are now overwritten with zeros (secure_delete). A catalog written before
    # may hold deleted files' text in its free pages: it is rewritten once (VACUUM) at the
    # end of the next full run (cleanup.scrub). A new, empty catalog has nothing to rewrite.
    ("0007_scrub_free_pages", """
        INSERT OR REPLACE INTO meta(key, value)
            SELECT 'scrub', 'vacuum' WHERE EXISTS (SELECT 1 FROM files);
    """),
    # Files of a kind nobody searches (FileKind.OTHER: css, js, audio, ...) are "ignored":
    # counted in the status, never listed as failures, never read. A catalog written before
    # holds them as skipped; they become ignored here, with no file read again. A kind that
    # becomes searchable later is no longer "other": its files are read by the next run.
    ("0008_ignored_files", """
        UPDATE files SET status = 'ignored', reason = NULL
            WHERE status = 'skipped' AND kind = 'other';
    """),
    # an SVG icon is ignored, not indexed by its name (extractor.py): an SVG indexed before
    # is read again by the next run (no hash: its bytes are not known to be done)
    ("0009_svg_icons", """
        UPDATE files SET hash = NULL
            WHERE kind = 'image' AND lower(path) LIKE '%.svg' AND status = 'indexed';
    """),
]
SCHEMA_VERSION = len(MIGRATIONS)
