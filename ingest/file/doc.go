// Package file is the collector that tails log files: it globs the
// configured paths, reads every file line by line from its checkpointed
// offset, hands complete lines to ingest.Emit in batches, and follows files
// through growth, rename+create rotation and copytruncate.
//
// Delivery is at-least-once. The read offset of a file is written to the
// checkpoint only after Emit returned nil for the lines before it, so a
// crash re-reads (never skips) the lines after the last checkpoint;
// the sinks drop those duplicates by Record.ID. The checkpoint is written
// as soon as the collector has caught up, and at most once per poll interval
// while it works through a backlog. An Emit error is retried
// with the same batch, backing off, until it succeeds or the context ends.
//
// Files are found by polling (re-glob and fstat every poll_interval), not by
// fsnotify: inotify misses events on NFS and other network or FUSE file
// systems, drops them when its queue overflows, needs one watch per
// directory with a per-user limit, and cannot see a file that appears under
// a glob's directory created later. Polling notices all of these at the cost
// of up to one poll interval of latency and a few syscalls per file.
//
// A file is identified by device and inode, so a renamed file keeps its
// offset, plus a SHA-256 of its first KiB, so a reused inode holding other
// content is read from the start. A file that shrank below the read offset
// (copytruncate) is read again from the start.
//
// Record.Stream is "dev:inode:gen:h": gen counts the times that inode was
// read again from 0 (truncated, or holding other content), h is the first
// 16 hex digits of the SHA-256 of the file's first line (at most
// max_line_bytes of it). Both are kept in the checkpoint, so a line re-read
// after a crash or a rename gets the same Record.ID, while a rotated-in or
// truncated file is a new stream even when its first line is identical.
//
// With read_gzip, matched files named *.gz (logrotate's compress) are
// decompressed, streaming and bounded by max_gzip_bytes, and read once:
// one at a time, after their size held still for a poll interval, and
// checkpointed as done at their end. A corrupt or truncated .gz is counted
// in Stats.GzipErrors, logged and skipped until its size or mtime changes.
// Its records' Stream is "gz:dev:inode:h", except for a .gz compressed
// from a file already read: if its decompressed head matches a tracked or
// retired file's first-line hash and head fingerprint, it continues that
// file's stream from its committed offset, so the lines already emitted
// are not read again and the rest get the ids the plain file would have
// given them. Without read_gzip, *.gz files are ignored.
//
// What it deliberately does not do: read compressions other than gzip,
// follow "**" globs, parse or redact the lines (the record is the line as written,
// minus "\n" or "\r\n"), or run on platforms without inodes (New fails
// there). A line longer than max_line_bytes is emitted cut to that length
// with Record.Truncated set, and counted in Stats.TruncatedLines; the
// normalize stage dead-letters it.
package file
