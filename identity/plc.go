package identity

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/did-method-plc/go-didplc/didplc"
)

// ErrDIDNotFound: the PLC directory has no document for the DID.
var ErrDIDNotFound = errors.New("did not found")

// PLC creates and updates the did:plc identities of hosted accounts. The
// server's rotation key signs every operation after genesis; the account's
// recovery key, when given, ranks above it so the user can take the identity
// elsewhere without us.
type PLC struct {
	// DirectoryURL is the PLC directory, e.g. https://plc.directory.
	DirectoryURL string
	// RotationKey is the server's PLC rotation key.
	RotationKey atcrypto.PrivateKey
	// RecoveryKey is the operator's recovery did:key (PDS_RECOVERY_DID_KEY),
	// ranked above RotationKey in every identity this server creates.
	RecoveryKey string
	// Endpoint is this PDS's public URL, named as the atproto_pds service.
	Endpoint string
	// HTTPClient talks to the directory; the operator configures its URL,
	// so it is not subject to the outbound guard.
	HTTPClient *http.Client

	mu   sync.Mutex
	docs map[string]cachedDoc
}

type cachedDoc struct {
	raw     json.RawMessage
	fetched time.Time
}

// docTTL bounds how stale a cached DID document may be; our own updates
// replace the cache entry at once.
const docTTL = 5 * time.Minute

// Credentials are the identity fields this PDS wants in a DID document.
type Credentials struct {
	RotationKeys        []string             `json:"rotationKeys"`
	AlsoKnownAs         []string             `json:"alsoKnownAs"`
	VerificationMethods map[string]string    `json:"verificationMethods"`
	Services            map[string]OpService `json:"services"`
}

// OpService is a service entry of a PLC operation.
type OpService = didplc.OpService

// Recommended returns the credentials for an account with the given handle
// and repo signing key (com.atproto.identity.getRecommendedDidCredentials).
func (p *PLC) Recommended(handle string, signing atcrypto.PublicKey) (Credentials, error) {
	rot, err := p.RotationKey.PublicKey()
	if err != nil {
		return Credentials{}, fmt.Errorf("rotation public key: %w", err)
	}
	rotation := []string{rot.DIDKey()}
	if p.RecoveryKey != "" {
		rotation = append([]string{p.RecoveryKey}, rotation...)
	}
	return Credentials{
		RotationKeys:        rotation,
		AlsoKnownAs:         []string{"at://" + handle},
		VerificationMethods: map[string]string{"atproto": signing.DIDKey()},
		Services: map[string]OpService{
			"atproto_pds": {Type: "AtprotoPersonalDataServer", Endpoint: p.Endpoint},
		},
	}, nil
}

// Genesis builds and signs the genesis operation of a new account and
// returns it with the DID it derives. recoveryKey, the user's own did:key,
// may be empty; it ranks first, then the operator's, then the server's.
func (p *PLC) Genesis(handle string, signing atcrypto.PublicKey, recoveryKey string) (string, *didplc.RegularOp, error) {
	cred, err := p.Recommended(handle, signing)
	if err != nil {
		return "", nil, err
	}
	if recoveryKey != "" {
		cred.RotationKeys = append([]string{recoveryKey}, cred.RotationKeys...)
	}
	op := &didplc.RegularOp{
		Type:                "plc_operation",
		RotationKeys:        cred.RotationKeys,
		VerificationMethods: cred.VerificationMethods,
		AlsoKnownAs:         cred.AlsoKnownAs,
		Services:            cred.Services,
	}
	if err := op.Sign(p.RotationKey); err != nil {
		return "", nil, fmt.Errorf("sign plc genesis: %w", err)
	}
	did, err := op.DID()
	if err != nil {
		return "", nil, fmt.Errorf("derive did: %w", err)
	}
	return did, op, nil
}

// Submit sends a signed operation to the directory.
func (p *PLC) Submit(ctx context.Context, did string, op *didplc.RegularOp) error {
	body, err := json.Marshal(op)
	if err != nil {
		return fmt.Errorf("encode plc operation: %w", err)
	}
	resp, err := p.do(ctx, http.MethodPost, "/"+did, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
		return fmt.Errorf("plc directory refused operation for %s: HTTP %d: %s", did, resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	p.forget(did)
	return nil
}

// UpdateHandle publishes a new operation naming handle first in
// alsoKnownAs, keeping everything else of the last operation.
func (p *PLC) UpdateHandle(ctx context.Context, did, handle string) error {
	last, err := p.lastOp(ctx, did)
	if err != nil {
		return err
	}
	aka := []string{"at://" + handle}
	for _, a := range last.AlsoKnownAs {
		if !strings.HasPrefix(a, "at://") {
			aka = append(aka, a)
		}
	}
	prev := last.CID().String()
	op := &didplc.RegularOp{
		Type:                "plc_operation",
		RotationKeys:        last.RotationKeys,
		VerificationMethods: last.VerificationMethods,
		AlsoKnownAs:         aka,
		Services:            last.Services,
		Prev:                &prev,
	}
	if err := op.Sign(p.RotationKey); err != nil {
		return fmt.Errorf("sign plc update: %w", err)
	}
	return p.Submit(ctx, did, op)
}

// lastOp fetches the directory's current operation for did.
func (p *PLC) lastOp(ctx context.Context, did string) (*didplc.RegularOp, error) {
	resp, err := p.do(ctx, http.MethodGet, "/"+did+"/log/last", nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, ErrDIDNotFound
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("plc directory: last op of %s: HTTP %d", did, resp.StatusCode)
	}
	var op didplc.OpEnum
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&op); err != nil {
		return nil, fmt.Errorf("decode last op of %s: %w", did, err)
	}
	if op.Regular == nil {
		return nil, fmt.Errorf("last op of %s is not a regular operation", did)
	}
	return op.Regular, nil
}

// Document returns the DID document the directory serves for did, as raw
// JSON so clients get it exactly as published.
func (p *PLC) Document(ctx context.Context, did string) (json.RawMessage, error) {
	p.mu.Lock()
	c, ok := p.docs[did]
	p.mu.Unlock()
	if ok && time.Since(c.fetched) < docTTL {
		return c.raw, nil
	}
	resp, err := p.do(ctx, http.MethodGet, "/"+did, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound, http.StatusGone:
		return nil, ErrDIDNotFound
	default:
		return nil, fmt.Errorf("plc directory: document of %s: HTTP %d", did, resp.StatusCode)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("read document of %s: %w", did, err)
	}
	if !json.Valid(raw) {
		return nil, fmt.Errorf("document of %s is not JSON", did)
	}
	p.mu.Lock()
	if p.docs == nil {
		p.docs = make(map[string]cachedDoc)
	}
	p.docs[did] = cachedDoc{raw: raw, fetched: time.Now()}
	p.mu.Unlock()
	return raw, nil
}

func (p *PLC) forget(did string) {
	p.mu.Lock()
	delete(p.docs, did)
	p.mu.Unlock()
}

func (p *PLC) do(ctx context.Context, method, path string, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(p.DirectoryURL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("plc request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	client := p.HTTPClient
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("plc directory %s %s: %w", method, path, err)
	}
	return resp, nil
}
