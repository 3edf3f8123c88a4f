package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/hearth-pds/hearth/datetime"
)

// PostCollection is the record type the record loads write: the most
// common one, validated by both servers against its lexicon.
const PostCollection = "app.bsky.feed.post"

// Post is a small app.bsky.feed.post record, distinct per n.
func Post(n int) map[string]any {
	return map[string]any{
		"$type":     PostCollection,
		"text":      fmt.Sprintf("bench post %d", n),
		"createdAt": time.Now().UTC().Format(datetime.Layout),
	}
}

// Commit is the commit a write made.
type Commit struct {
	CID string `json:"cid"`
	Rev string `json:"rev"`
}

// Created is com.atproto.repo.createRecord's answer.
type Created struct {
	URI    string  `json:"uri"`
	CID    string  `json:"cid"`
	Commit *Commit `json:"commit"`
}

// CreateRecord calls com.atproto.repo.createRecord on the caller's repo.
func (c *Client) CreateRecord(ctx context.Context, accessJWT, did, collection string, record map[string]any) (Created, error) {
	var out Created
	in := map[string]any{"repo": did, "collection": collection, "record": record}
	err := c.Call(ctx, "com.atproto.repo.createRecord", Bearer(accessJWT), in, &out)
	return out, err
}

// MaxBatch is the most writes one applyWrites call may carry (both servers).
const MaxBatch = 200

// CreateRecords makes len(records) records of collection in one
// com.atproto.repo.applyWrites call (one commit).
func (c *Client) CreateRecords(ctx context.Context, accessJWT, did, collection string, records []map[string]any) error {
	writes := make([]map[string]any, len(records))
	for i, r := range records {
		writes[i] = map[string]any{
			"$type":      "com.atproto.repo.applyWrites#create",
			"collection": collection,
			"value":      r,
		}
	}
	in := map[string]any{"repo": did, "writes": writes}
	return c.Call(ctx, "com.atproto.repo.applyWrites", Bearer(accessJWT), in, nil)
}

// maxDownload bounds one CAR download (getRepo).
const maxDownload = 1 << 30

// GetRepo downloads com.atproto.sync.getRepo of did to its end and returns
// its size in bytes; the CAR itself is discarded.
func (c *Client) GetRepo(ctx context.Context, did string) (int64, error) {
	u := c.base + "/xrpc/com.atproto.sync.getRepo?did=" + url.QueryEscape(did)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return 0, &Error{Status: resp.StatusCode, Message: strings.TrimSpace(string(b))}
	}
	n, err := io.Copy(io.Discard, io.LimitReader(resp.Body, maxDownload+1))
	if err == nil && n > maxDownload {
		err = fmt.Errorf("getRepo: more than %d bytes", maxDownload)
	}
	return n, err
}
