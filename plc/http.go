package plc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
)

// routes is the HTTP API, one line a route. None needs authentication:
// operations authenticate themselves by their signatures.
func (d *Directory) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /_health", d.handle(d.getHealth))
	mux.Handle("GET /export", d.handle(d.getExport))
	mux.Handle("GET /{did}", d.handle(d.getDocument))
	mux.Handle("GET /{did}/data", d.handle(d.getData))
	mux.Handle("GET /{did}/log", d.handle(d.getLog))
	mux.Handle("GET /{did}/log/audit", d.handle(d.getAuditLog))
	mux.Handle("GET /{did}/log/last", d.handle(d.getLastOp))
	mux.Handle("POST /{did}", d.handle(d.postOperation))
	mux.Handle("/", d.handle(func(w http.ResponseWriter, r *http.Request) error {
		return &statusError{status: http.StatusNotFound, message: fmt.Sprintf("Cannot %s %s", r.Method, r.URL.Path)}
	}))
	return cors(mux)
}

// ServeHTTP serves the PLC directory API.
func (d *Directory) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.handler.ServeHTTP(w, r)
}

// statusError is an error the handler shows as is, with its status.
type statusError struct {
	status  int
	message string
}

func (e *statusError) Error() string { return e.message }

// handle adapts a handler that returns an error. This is the one place
// errors become responses: {"message": ...} with the status the reference
// uses. Anything unexpected is logged and shown only as a 500.
func (d *Directory) handle(h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := h(w, r)
		if err == nil {
			return
		}
		status, message := http.StatusInternalServerError, "Internal Server Error"
		var se *statusError
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &se):
			status, message = se.status, se.message
		case errors.As(err, &tooLarge):
			status, message = http.StatusRequestEntityTooLarge, "request entity too large"
		case errors.Is(err, ErrInvalidOperation):
			status, message = http.StatusBadRequest, err.Error()
		case errors.Is(err, ErrNotRegistered):
			status, message = http.StatusNotFound, err.Error()
		case errors.Is(err, ErrDeactivated):
			status, message = http.StatusGone, err.Error()
		case errors.Is(err, ErrClosed):
			status, message = http.StatusServiceUnavailable, "Service Unavailable"
		default:
			d.logger.Error("plc request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		if status < 500 {
			d.logger.Debug("plc request refused", "method", r.Method, "path", r.URL.Path, "status", status, "message", message)
		}
		writeJSON(w, status, "application/json", map[string]string{"message": message})
	})
}

// parseDID parses the {did} path segment. A string that is not a DID is
// simply not registered, as the reference answers for any unknown name.
func parseDID(r *http.Request) (syntax.DID, error) {
	raw := r.PathValue("did")
	did, err := syntax.ParseDID(raw)
	if err != nil {
		return "", fmt.Errorf("%w: %s", ErrNotRegistered, raw)
	}
	return did, nil
}

func (d *Directory) getHealth(w http.ResponseWriter, r *http.Request) error {
	d.mu.RLock()
	closed := d.closed
	d.mu.RUnlock()
	if closed {
		writeJSON(w, http.StatusServiceUnavailable, "application/json", map[string]string{"version": d.version, "error": "Service Unavailable"})
		return nil
	}
	writeJSON(w, http.StatusOK, "application/json", map[string]string{"version": d.version})
	return nil
}

func (d *Directory) getDocument(w http.ResponseWriter, r *http.Request) error {
	did, err := parseDID(r)
	if err != nil {
		return err
	}
	doc, err := d.Document(did)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, "application/did+ld+json", doc)
	return nil
}

func (d *Directory) getData(w http.ResponseWriter, r *http.Request) error {
	did, err := parseDID(r)
	if err != nil {
		return err
	}
	data, err := d.Data(did)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, "application/json", data)
	return nil
}

func (d *Directory) getLog(w http.ResponseWriter, r *http.Request) error {
	did, err := parseDID(r)
	if err != nil {
		return err
	}
	ops, err := d.opLog(did)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, "application/json", ops)
	return nil
}

func (d *Directory) getAuditLog(w http.ResponseWriter, r *http.Request) error {
	did, err := parseDID(r)
	if err != nil {
		return err
	}
	entries, err := d.AuditLog(did)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, "application/json", entries)
	return nil
}

func (d *Directory) getLastOp(w http.ResponseWriter, r *http.Request) error {
	did, err := parseDID(r)
	if err != nil {
		return err
	}
	op, err := d.LastOp(did)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, "application/json", op.AsOpEnum())
	return nil
}

// getExport serves every operation as JSON lines, oldest first: ?count
// (at most 1000, the default) after ?after (a timestamp, exclusive).
func (d *Directory) getExport(w http.ResponseWriter, r *http.Request) error {
	count := 1000
	if raw := r.URL.Query().Get("count"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 {
			return &statusError{status: http.StatusBadRequest, message: "Invalid count parameter"}
		}
		count = min(n, 1000)
	}
	var after time.Time
	if raw := r.URL.Query().Get("after"); raw != "" {
		t, err := time.Parse(time.RFC3339Nano, raw)
		if err != nil {
			return &statusError{status: http.StatusBadRequest, message: "Invalid after parameter"}
		}
		after = t
	}
	entries, err := d.export(after, count)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	for i := range entries {
		if i > 0 {
			buf.WriteByte('\n')
		}
		line, err := marshalJSON(&entries[i])
		if err != nil {
			return fmt.Errorf("encode export: %w", err)
		}
		buf.Write(line)
	}
	w.Header().Set("Content-Type", "application/jsonlines")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
	return nil
}

// postOperation accepts an operation. Like the reference, it reads only
// application/json bodies (anything else reads as an empty object, which
// is not an operation) of at most 100 KiB, and answers a bare 200 "OK".
func (d *Directory) postOperation(w http.ResponseWriter, r *http.Request) error {
	raw := r.PathValue("did")
	did, err := syntax.ParseDID(raw)
	if err != nil {
		return fmt.Errorf("%w: %q is not a DID", ErrInvalidOperation, raw)
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		return fmt.Errorf("%w: body must be application/json", ErrInvalidOperation)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		return fmt.Errorf("read operation: %w", err)
	}
	op, err := DecodeOperation(body)
	if err != nil {
		return err
	}
	if err := d.Submit(r.Context(), did, op); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, "OK")
	return nil
}

// writeJSON writes v without HTML escaping, as JavaScript's JSON.stringify
// does, so documents and logs come out as the reference writes them.
func writeJSON(w http.ResponseWriter, status int, contentType string, v any) {
	body, err := marshalJSON(v)
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"message":"Internal Server Error"}`)
		contentType = "application/json"
	}
	w.Header().Set("Content-Type", contentType+"; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// cors allows browsers to read the directory from any origin, as the
// reference does (it uses the cors middleware with its defaults): apps
// running in a browser against a dev PDS resolve DIDs themselves.
func cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "GET,HEAD,PUT,PATCH,POST,DELETE")
			if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
				h.Set("Access-Control-Allow-Headers", req)
				h.Add("Vary", "Access-Control-Request-Headers")
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}
