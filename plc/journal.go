package plc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/did-method-plc/go-didplc/didplc"
)

// journalName is the file, inside the directory the caller names, that
// holds every accepted operation. The name is specific enough that the
// caller may pass a directory shared with other files.
const journalName = "plc-operations.jsonl"

// createdAt is written in datetime.Layout, in the journal and on the wire,
// as the reference's Date.toISOString does.

// record is one line of the journal: an accepted operation and the time
// the directory accepted it. Whether it was later nullified is not
// written; replay derives it, so a line is never rewritten.
type record struct {
	DID       string         `json:"did"`
	CID       string         `json:"cid"`
	CreatedAt string         `json:"createdAt"`
	Operation *didplc.OpEnum `json:"operation"`
}

// journal is the append-only file of records, one JSON object a line.
//
// Durability: append returns only after fsync, and the directory is
// synced when the file is created, so an operation acknowledged to a
// client survives a crash. A crash during append can leave a torn last
// line (a prefix of it, or garbage the filesystem had not yet filled);
// openJournal cuts that line off. A damaged line anywhere else is not a
// torn write, and opening fails rather than silently dropping history.
type journal struct {
	f    *os.File
	path string
	// size is the length of the file's valid prefix; a failed append is
	// rolled back to it.
	size int64
	// broken is set when a failed append could not be rolled back: the
	// file's tail is unknown, so no further append may follow it.
	broken error
}

// openJournal opens (creating if needed) the journal in dir, locks it
// against a second process, and calls replay for each record in order.
// A replay error aborts the open, naming the line.
func openJournal(dir string, logger *slog.Logger, replay func(rec record, op didplc.Operation, createdAt time.Time) error) (*journal, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create plc directory %s: %w", dir, err)
	}
	path := filepath.Join(dir, journalName)
	_, statErr := os.Stat(path)
	created := errors.Is(statErr, os.ErrNotExist)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open plc journal: %w", err)
	}
	j := &journal{f: f, path: path}
	if err := lockFile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock plc journal %s: %w", path, err)
	}
	if created {
		if err := syncDir(dir); err != nil {
			f.Close()
			return nil, fmt.Errorf("sync plc directory %s: %w", dir, err)
		}
	}
	if err := j.load(logger, replay); err != nil {
		f.Close()
		return nil, err
	}
	return j, nil
}

func (j *journal) load(logger *slog.Logger, replay func(record, didplc.Operation, time.Time) error) error {
	data, err := io.ReadAll(j.f)
	if err != nil {
		return fmt.Errorf("read plc journal %s: %w", j.path, err)
	}
	var good int64
	for line := 1; len(data) > 0; line++ {
		end := bytes.IndexByte(data, '\n')
		if end < 0 {
			// No newline: the last append did not finish.
			return j.cutTail(logger, good, len(data), "unterminated last line")
		}
		var rec record
		if err := json.Unmarshal(data[:end], &rec); err != nil {
			if end+1 == len(data) {
				return j.cutTail(logger, good, len(data), err.Error())
			}
			return fmt.Errorf("plc journal %s line %d is damaged (and is not the last line, so not a torn write): %w", j.path, line, err)
		}
		if err := replayRecord(rec, replay); err != nil {
			return fmt.Errorf("plc journal %s line %d: %w", j.path, line, err)
		}
		good += int64(end + 1)
		data = data[end+1:]
	}
	j.size = good
	return nil
}

func replayRecord(rec record, replay func(record, didplc.Operation, time.Time) error) error {
	if rec.Operation == nil {
		return errors.New("record has no operation")
	}
	op := rec.Operation.AsOperation()
	if op == nil {
		return errors.New("record has an empty operation")
	}
	if cid := op.CID().String(); cid != rec.CID {
		return fmt.Errorf("operation hashes to %s, record says %s", cid, rec.CID)
	}
	createdAt, err := time.Parse(time.RFC3339Nano, rec.CreatedAt)
	if err != nil {
		return fmt.Errorf("createdAt: %w", err)
	}
	return replay(rec, op, createdAt)
}

// cutTail truncates a torn last line: it was never acknowledged (append
// acknowledges only after the whole line is synced), so no client relies
// on it.
func (j *journal) cutTail(logger *slog.Logger, good int64, torn int, reason string) error {
	logger.Warn("dropping torn last line of plc journal", "path", j.path, "offset", good, "bytes", torn, "reason", reason)
	if err := j.f.Truncate(good); err != nil {
		return fmt.Errorf("truncate torn tail of plc journal %s: %w", j.path, err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("sync plc journal %s: %w", j.path, err)
	}
	j.size = good
	return nil
}

// append writes rec as one line and syncs it. On failure the file is cut
// back to its previous length, so the next append does not follow a
// partial line; if even that fails, the journal refuses further appends.
func (j *journal) append(rec record) error {
	if j.broken != nil {
		return fmt.Errorf("plc journal unusable after an earlier failure: %w", j.broken)
	}
	line, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode plc journal record: %w", err)
	}
	line = append(line, '\n')
	if _, err := j.f.Write(line); err != nil {
		j.rollback(err)
		return fmt.Errorf("write plc journal: %w", err)
	}
	if err := j.f.Sync(); err != nil {
		// After a failed fsync the kernel may have dropped the dirty pages
		// and cleared the error; what is on disk is unknown. Roll back and
		// stop: retrying would report durability it cannot promise.
		j.rollback(err)
		if j.broken == nil {
			j.broken = err
		}
		return fmt.Errorf("sync plc journal: %w", err)
	}
	j.size += int64(len(line))
	return nil
}

func (j *journal) rollback(cause error) {
	if err := j.f.Truncate(j.size); err != nil {
		j.broken = fmt.Errorf("%w (and rolling back failed: %v)", cause, err)
	}
}

func (j *journal) close() error {
	if err := j.f.Close(); err != nil {
		return fmt.Errorf("close plc journal: %w", err)
	}
	return nil
}

// syncDir makes a newly created file's directory entry durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
