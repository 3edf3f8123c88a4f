package readafterwrite

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/atdata"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/hearth-pds/hearth/datetime"
	"github.com/hearth-pds/hearth/proxy"
	"github.com/hearth-pds/hearth/refusal"
	"github.com/hearth-pds/hearth/store"
)

// The views patched here.
const (
	GetProfile     = "app.bsky.actor.getProfile"
	GetProfiles    = "app.bsky.actor.getProfiles"
	GetTimeline    = "app.bsky.feed.getTimeline"
	GetAuthorFeed  = "app.bsky.feed.getAuthorFeed"
	GetActorLikes  = "app.bsky.feed.getActorLikes"
	GetPostThread  = "app.bsky.feed.getPostThread"
	profileNSID    = "app.bsky.actor.profile"
	postNSID       = "app.bsky.feed.post"
	maxLocal       = 10 // records read per view, as the official module reads
	upstreamLagHdr = "Atproto-Upstream-Lag"
)

// Pipe forwards a view to the AppView (proxy.Proxy does).
type Pipe interface {
	Pipethrough(r *http.Request, nsid string, opts proxy.PipeOptions) (*proxy.Piped, error)
}

// Store reads the caller's records and account (store.Store does).
type Store interface {
	RecordsSince(ctx context.Context, did syntax.DID, since syntax.TID, limit int) ([]store.IndexedRecord, error)
	Record(ctx context.Context, did syntax.DID, collection syntax.NSID, rkey syntax.RecordKey) (*store.RecordRef, error)
	Block(ctx context.Context, did syntax.DID, c cid.Cid) ([]byte, error)
	AccountByDID(ctx context.Context, did syntax.DID) (*store.Account, error)
	AccountByHandle(ctx context.Context, handle syntax.Handle) (*store.Account, error)
}

var (
	_ Pipe  = (*proxy.Proxy)(nil)
	_ Store = (store.Store)(nil)
)

// Config configures a Viewer.
type Config struct {
	// PublicURL is this server's URL, for blob URLs without a CDN.
	PublicURL string
	// CDNURLPattern is PDS_BSKY_APP_VIEW_CDN_URL_PATTERN ("" for none).
	CDNURLPattern string
	Logger        *slog.Logger
}

// Viewer serves the views patched with local records.
type Viewer struct {
	cfg   Config
	pipe  Pipe
	store Store
	log   *slog.Logger
	now   func() time.Time
}

// New builds a Viewer.
func New(cfg Config, pipe Pipe, st Store) *Viewer {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Viewer{cfg: cfg, pipe: pipe, store: st, log: cfg.Logger, now: time.Now}
}

// munger patches a view's JSON body (decoded with numbers kept as
// written); it reports false when the body is not of the expected shape.
type munger func(ctx context.Context, lv *localViewer, body map[string]any, local *localRecords) (bool, error)

var mungers = map[string]munger{
	GetProfile:    mungeProfile,
	GetProfiles:   mungeProfiles,
	GetTimeline:   mungeTimeline,
	GetAuthorFeed: mungeAuthorFeed,
	GetActorLikes: mungeActorLikes,
	GetPostThread: mungePostThread,
}

// ServeView serves view nsid for the authenticated account did. Errors
// are the proxy's (refusals, the AppView's own errors) or internal ones.
func (v *Viewer) ServeView(w http.ResponseWriter, r *http.Request, nsid, did string) error {
	munge, ok := mungers[nsid]
	if !ok {
		return fmt.Errorf("read after write: no view %s", nsid)
	}
	piped, err := v.pipe.Pipethrough(r, nsid, proxy.PipeOptions{Issuer: did})
	if err != nil {
		var notFound *refusal.Error
		if rev := proxy.UpstreamRev(err); nsid == GetPostThread && rev != "" && errors.As(err, &notFound) && notFound.Name == "NotFound" {
			return v.threadNotFound(w, r, did, notFound, rev)
		}
		return err
	}
	rev := piped.Header.Get("Atproto-Repo-Rev")
	if rev == "" || !jsonContentType(piped.Header.Get("Content-Type")) {
		return piped.Write(w)
	}
	local, err := v.localRecords(r.Context(), did, rev)
	if err != nil {
		piped.Body.Close()
		return err
	}
	if local.count == 0 {
		return piped.Write(w)
	}
	raw, err := piped.Decoded()
	if err != nil {
		v.log.Warn("read after write: unreadable upstream answer", "nsid", nsid, "err", err)
		return refusal.New("UpstreamFailure", "unable to decode request body")
	}
	body, ok := decodeObject(raw)
	if ok {
		lv := v.localViewer(did)
		ok, err = munge(r.Context(), lv, body, local)
		if err != nil {
			v.log.Warn("read after write: patch failed", "nsid", nsid, "did", did, "err", err)
			ok = false
		}
	}
	if !ok {
		return writeBuffered(w, piped, raw)
	}
	return writeMunged(w, body, local.lag(v.now()))
}

// jsonContentType: absent counts as JSON, as the official check does.
func jsonContentType(ct string) bool {
	return ct == "" || jsonType.MatchString(ct)
}

var jsonType = regexp.MustCompile(`(?i)application/(?:\w+\+)?json`)

func decodeObject(raw []byte) (map[string]any, bool) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil || m == nil {
		return nil, false
	}
	return m, true
}

// writeBuffered relays an answer read whole, as the official PDS relays
// a buffered pipethrough: its headers without content encoding and
// length, the decoded body.
func writeBuffered(w http.ResponseWriter, piped *proxy.Piped, raw []byte) error {
	h := w.Header()
	for name, vals := range piped.Header {
		if name == "Content-Encoding" || name == "Content-Length" {
			continue
		}
		h[name] = vals
	}
	h.Set("Content-Type", piped.ContentType)
	h.Set("Content-Length", strconv.Itoa(len(raw)))
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(raw)
	return err
}

// writeMunged sends a patched view as the official PDS does: JSON, the
// lag header when known, no upstream header.
func writeMunged(w http.ResponseWriter, body any, lag *time.Duration) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(body); err != nil {
		return err
	}
	out := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(out)))
	if lag != nil {
		h.Set(upstreamLagHdr, strconv.FormatInt(lag.Milliseconds(), 10))
	}
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(out)
	return err
}

// localRecords are the caller's records newer than the AppView's rev:
// how many, and the profile and posts among them.
type localRecords struct {
	count   int
	profile *localRecord
	posts   []localRecord // oldest first
}

type localRecord struct {
	uri, cid  string
	indexedAt time.Time
	value     map[string]any // generic JSON, as the record's JSON form
}

// indexedAtString is the JavaScript toISOString form the views use.
func (r *localRecord) indexedAtString() string {
	return r.indexedAt.UTC().Format(datetime.Layout)
}

// lag is the age of the oldest newer profile or post, nil without one.
func (l *localRecords) lag(now time.Time) *time.Duration {
	var oldest *time.Time
	if l.profile != nil {
		oldest = &l.profile.indexedAt
	}
	for i := range l.posts {
		if oldest == nil || l.posts[i].indexedAt.Before(*oldest) {
			oldest = &l.posts[i].indexedAt
		}
	}
	if oldest == nil {
		return nil
	}
	d := now.Sub(*oldest)
	return &d
}

func (v *Viewer) localRecords(ctx context.Context, did, rev string) (*localRecords, error) {
	refs, err := v.store.RecordsSince(ctx, syntax.DID(did), syntax.TID(rev), maxLocal)
	if err != nil {
		return nil, err
	}
	out := &localRecords{count: len(refs)}
	for _, ref := range refs {
		isProfile := ref.Collection == profileNSID && ref.RKey == "self"
		if !isProfile && ref.Collection != postNSID {
			continue
		}
		value, err := v.recordJSON(ctx, did, ref.CID)
		if err != nil {
			return nil, err
		}
		rec := localRecord{
			uri:       "at://" + did + "/" + ref.Collection.String() + "/" + ref.RKey.String(),
			cid:       ref.CID.String(),
			indexedAt: ref.IndexedAt,
			value:     value,
		}
		if isProfile {
			out.profile = &rec
		} else {
			out.posts = append(out.posts, rec)
		}
	}
	return out, nil
}

// recordJSON reads a record as generic JSON (its data-model JSON form).
func (v *Viewer) recordJSON(ctx context.Context, did string, cid cid.Cid) (map[string]any, error) {
	data, err := v.store.Block(ctx, syntax.DID(did), cid)
	if err != nil {
		return nil, fmt.Errorf("record block %s of %s: %w", cid, did, err)
	}
	value, err := atdata.UnmarshalCBOR(data)
	if err != nil {
		return nil, fmt.Errorf("decode record %s of %s: %w", cid, did, err)
	}
	raw, err := json.Marshal(value)
	if err != nil {
		return nil, fmt.Errorf("render record %s of %s: %w", cid, did, err)
	}
	m, ok := decodeObject(raw)
	if !ok {
		return nil, fmt.Errorf("render record %s of %s: not an object", cid, did)
	}
	return m, nil
}

// imageURL is the official ImageUrlBuilder: the CDN pattern's %s filled
// with preset, DID and CID, else this server's getBlob.
func (v *Viewer) imageURL(preset, did, cid string) string {
	if v.cfg.CDNURLPattern == "" {
		return strings.TrimSuffix(v.cfg.PublicURL, "/") + "/xrpc/com.atproto.sync.getBlob?did=" + did + "&cid=" + cid
	}
	args := []string{preset, did, cid}
	var b strings.Builder
	p := v.cfg.CDNURLPattern
	for len(p) > 0 {
		i := strings.IndexByte(p, '%')
		if i < 0 || i == len(p)-1 {
			b.WriteString(p)
			break
		}
		b.WriteString(p[:i])
		switch p[i+1] {
		case 's':
			if len(args) > 0 {
				b.WriteString(args[0])
				args = args[1:]
			} else {
				b.WriteString("%s")
			}
		case '%':
			b.WriteByte('%')
		default:
			b.WriteString(p[i : i+2])
		}
		p = p[i+2:]
	}
	return b.String()
}
