package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"

	"github.com/hearth-pds/hearth/testenv"
)

// TestGoatSignUpAndLogin: indigo's CLI creates an account with an invite
// and a user recovery key, logs in, and reads the recommended DID
// credentials; the reference PLC directory then holds the recovery key
// first among the rotation keys.
func TestGoatSignUpAndLogin(t *testing.T) {
	plcURL := testenv.StartReferencePLC(t)
	h := testenv.StartHearth(t, plcURL)
	goat := testenv.Goat(t)

	code := adminInvite(t, h, 1)
	recovery, err := atcrypto.GeneratePrivateKeyK256()
	if err != nil {
		t.Fatal(err)
	}
	recoveryPub, _ := recovery.PublicKey()

	home := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, goat, args...)
		cmd.Env = append(os.Environ(), "HOME="+home, "XDG_STATE_HOME="+home+"/state",
			"XDG_CONFIG_HOME="+home+"/config", "XDG_DATA_HOME="+home+"/data", "ATP_PLC_HOST="+plcURL)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("goat %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, &stdout, &stderr)
		}
		return stdout.String()
	}

	out := run("account", "create", "--pds-host", h.URL, "--handle", "goatuser.test",
		"--password", "goat-password", "--email", "goat@example.com", "--invite-code", code,
		"--recovery-key", recoveryPub.DIDKey())
	did := ""
	for _, f := range strings.Fields(out) {
		if strings.HasPrefix(f, "did:plc:") {
			did = f
		}
	}
	if did == "" {
		t.Fatalf("goat account create printed no DID: %q", out)
	}

	run("account", "login", "--pds-host", h.URL, "-u", did, "-p", "goat-password")
	rec := run("account", "plc", "recommended")
	var cred struct {
		RotationKeys []string `json:"rotationKeys"`
		AlsoKnownAs  []string `json:"alsoKnownAs"`
	}
	if err := json.Unmarshal([]byte(rec), &cred); err != nil {
		t.Fatalf("goat account plc recommended: %q: %v", rec, err)
	}
	if !equal(cred.AlsoKnownAs, []string{"at://goatuser.test"}) {
		t.Errorf("recommended alsoKnownAs = %v", cred.AlsoKnownAs)
	}

	var data struct {
		RotationKeys []string `json:"rotationKeys"`
	}
	getJSON(t, plcURL+"/"+did+"/data", &data)
	if len(data.RotationKeys) != 2 || data.RotationKeys[0] != recoveryPub.DIDKey() || data.RotationKeys[1] != cred.RotationKeys[0] {
		t.Errorf("PLC rotation keys = %v, want [recovery %s, server %v]", data.RotationKeys, recoveryPub.DIDKey(), cred.RotationKeys)
	}

	// A used-up invite refuses the next sign-up.
	cmd := exec.Command(goat, "account", "create", "--pds-host", h.URL, "--handle", "second.test",
		"--password", "pw", "--email", "second@example.com", "--invite-code", code)
	cmd.Env = append(os.Environ(), "HOME="+home)
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "InvalidInviteCode") {
		t.Errorf("sign-up with a used invite: err=%v output=%s", err, out)
	}
}

// adminInvite makes an invite code through the admin API.
func adminInvite(t *testing.T, h *testenv.Hearth, uses int) string {
	t.Helper()
	body, _ := json.Marshal(map[string]int{"useCount": uses})
	req, _ := http.NewRequest(http.MethodPost, h.URL+"/xrpc/com.atproto.server.createInviteCode", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth("admin", h.AdminPassword)
	resp, status := do(t, req)
	if status != http.StatusOK {
		t.Fatalf("createInviteCode: %d %s", status, resp)
	}
	var out struct{ Code string }
	json.Unmarshal([]byte(resp), &out)
	return out.Code
}
