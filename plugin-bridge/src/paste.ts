// After a paste or drop into a note, Obsidian saves the picture as a new file and writes the
// embed. The files created in the moments after a paste are that picture: they are sent to the
// daemon to index now, with the note, instead of waiting for its file watcher's next batch.

export const INDEXED = /\.(png|jpe?g|gif|webp|bmp|avif|tiff?|pdf)$/i;
export const WINDOW_MS = 10_000;

export class PasteWatcher {
  private armedUntil = 0;
  private note: string | null = null;

  /** A paste or drop happened in ``note``. */
  arm(note: string | null, now: number = Date.now()): void {
    this.armedUntil = now + WINDOW_MS;
    this.note = note;
  }

  /** A file was created: the paths to index now (the picture, then its note), or none. */
  created(path: string, now: number = Date.now()): string[] {
    if (now > this.armedUntil || !INDEXED.test(path)) return [];
    return this.note ? [path, this.note] : [path];
  }
}
