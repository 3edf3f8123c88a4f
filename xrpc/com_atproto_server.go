package xrpc

import (
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/hearth-pds/hearth/account"
	"github.com/hearth-pds/hearth/datetime"
	"github.com/hearth-pds/hearth/serviceauth"
)

func (s *Server) describeServer(w http.ResponseWriter, r *http.Request, _ caller) error {
	d := s.describe
	links := map[string]string{}
	if d.PrivacyPolicyURL != "" {
		links["privacyPolicy"] = d.PrivacyPolicyURL
	}
	if d.TermsOfServiceURL != "" {
		links["termsOfService"] = d.TermsOfServiceURL
	}
	out := map[string]any{
		"did":                       d.DID,
		"availableUserDomains":      d.AvailableUserDomains,
		"inviteCodeRequired":        d.InviteCodeRequired,
		"blobUploadLimit":           d.BlobUploadLimit,
		"phoneVerificationRequired": false,
		"links":                     links,
		"contact":                   map[string]string{},
	}
	if d.ContactEmail != "" {
		out["contact"] = map[string]string{"email": d.ContactEmail}
	}
	return writeJSON(w, out)
}

// sessionOutput is the body of createSession, refreshSession, getSession
// and createAccount (each uses a subset).
type sessionOutput struct {
	AccessJWT      string          `json:"accessJwt,omitempty"`
	RefreshJWT     string          `json:"refreshJwt,omitempty"`
	Handle         string          `json:"handle"`
	DID            string          `json:"did"`
	DIDDoc         json.RawMessage `json:"didDoc,omitempty"`
	Email          string          `json:"email,omitempty"`
	EmailConfirmed *bool           `json:"emailConfirmed,omitempty"`
	Active         *bool           `json:"active,omitempty"`
	Status         string          `json:"status,omitempty"`
}

// sessionBody renders a session as the official PDS does: email and its
// confirmation, active, and status when not active.
func sessionBody(sess *account.Session) sessionOutput {
	a := sess.Account
	out := sessionOutput{
		AccessJWT:  sess.AccessJWT,
		RefreshJWT: sess.RefreshJWT,
		Handle:     handleOrInvalid(a.Handle),
		DID:        a.DID,
		DIDDoc:     sess.DIDDoc,
		Status:     a.Status,
	}
	active, confirmed := a.Active(), a.EmailConfirmed
	out.Active, out.Email, out.EmailConfirmed = &active, a.Email, &confirmed
	return out
}

func handleOrInvalid(handle string) string {
	if handle == "" {
		return "handle.invalid"
	}
	return handle
}

func (s *Server) createAccount(w http.ResponseWriter, r *http.Request, _ caller) error {
	in, err := readInput(w, r)
	if err != nil {
		return err
	}
	if in.has("plcOp") {
		return invalidRequest(`Unsupported input: "plcOp"`)
	}
	req := account.CreateAccountInput{
		Handle:      in.str("handle", true),
		Email:       in.str("email", false),
		DID:         in.str("did", false),
		InviteCode:  in.str("inviteCode", false),
		Password:    in.str("password", false),
		RecoveryKey: in.str("recoveryKey", false),
	}
	if in.err != nil {
		return in.err
	}
	if err := checkHandleSyntax(req.Handle); err != nil {
		return err
	}
	sess, err := s.accounts.CreateAccount(r.Context(), req)
	if err != nil {
		return err
	}
	return writeJSON(w, sessionOutput{
		AccessJWT: sess.AccessJWT, RefreshJWT: sess.RefreshJWT,
		Handle: sess.Account.Handle, DID: sess.Account.DID, DIDDoc: sess.DIDDoc,
	})
}

func (s *Server) createSession(w http.ResponseWriter, r *http.Request, _ caller) error {
	in, err := readInput(w, r)
	if err != nil {
		return err
	}
	identifier, password := in.str("identifier", true), in.str("password", true)
	if in.err != nil {
		return in.err
	}
	sess, err := s.accounts.CreateSession(r.Context(), identifier, password)
	if err != nil {
		return err
	}
	return writeJSON(w, sessionBody(sess))
}

func (s *Server) getSession(w http.ResponseWriter, r *http.Request, c caller) error {
	sess, err := s.accounts.GetSession(r.Context(), c.DID)
	if err != nil {
		return err
	}
	return writeJSON(w, sessionBody(sess))
}

func (s *Server) refreshSession(w http.ResponseWriter, r *http.Request, c caller) error {
	sess, err := s.accounts.RefreshSession(r.Context(), c.Refresh)
	if err != nil {
		return err
	}
	return writeJSON(w, sessionBody(sess))
}

func (s *Server) deleteSession(w http.ResponseWriter, r *http.Request, c caller) error {
	return s.accounts.DeleteSession(r.Context(), c.Refresh)
}

func (s *Server) createAppPassword(w http.ResponseWriter, r *http.Request, c caller) error {
	in, err := readInput(w, r)
	if err != nil {
		return err
	}
	name, privileged := in.str("name", true), in.boolean("privileged")
	if in.err != nil {
		return in.err
	}
	p, err := s.accounts.CreateAppPassword(r.Context(), c.DID, name, privileged)
	if err != nil {
		return err
	}
	return writeJSON(w, map[string]any{
		"name": p.Name, "password": p.Password, "createdAt": p.CreatedAt.Format(datetime.Layout), "privileged": p.Privileged,
	})
}

func (s *Server) listAppPasswords(w http.ResponseWriter, r *http.Request, c caller) error {
	list, err := s.accounts.ListAppPasswords(r.Context(), c.DID)
	if err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(list))
	for _, p := range list {
		out = append(out, map[string]any{"name": p.Name, "createdAt": p.CreatedAt.Format(datetime.Layout), "privileged": p.Privileged})
	}
	return writeJSON(w, map[string]any{"passwords": out})
}

func (s *Server) revokeAppPassword(w http.ResponseWriter, r *http.Request, c caller) error {
	in, err := readInput(w, r)
	if err != nil {
		return err
	}
	name := in.str("name", true)
	if in.err != nil {
		return in.err
	}
	return s.accounts.RevokeAppPassword(r.Context(), c.DID, name)
}

func (s *Server) createInviteCode(w http.ResponseWriter, r *http.Request, _ caller) error {
	in, err := readInput(w, r)
	if err != nil {
		return err
	}
	uses, _ := in.integer("useCount", true)
	forAccount := in.str("forAccount", false)
	if in.err != nil {
		return in.err
	}
	var forAccounts []string
	if forAccount != "" {
		forAccounts = []string{forAccount}
	}
	groups, err := s.accounts.CreateInviteCodes(r.Context(), 1, uses, forAccounts)
	if err != nil {
		return err
	}
	return writeJSON(w, map[string]string{"code": groups[0].Codes[0]})
}

func (s *Server) createInviteCodes(w http.ResponseWriter, r *http.Request, _ caller) error {
	in, err := readInput(w, r)
	if err != nil {
		return err
	}
	count, given := in.integer("codeCount", false)
	if !given {
		count = 1
	}
	uses, _ := in.integer("useCount", true)
	forAccounts := in.strs("forAccounts")
	if in.err != nil {
		return in.err
	}
	groups, err := s.accounts.CreateInviteCodes(r.Context(), count, uses, forAccounts)
	if err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(groups))
	for _, g := range groups {
		out = append(out, map[string]any{"account": g.Account, "codes": g.Codes})
	}
	return writeJSON(w, map[string]any{"codes": out})
}

func (s *Server) getAccountInviteCodes(w http.ResponseWriter, r *http.Request, c caller) error {
	p := params(r)
	includeUsed := p.boolean("includeUsed", true)
	p.boolean("createAvailable", true)
	if p.err != nil {
		return p.err
	}
	codes, err := s.accounts.AccountInviteCodes(r.Context(), c.DID, includeUsed)
	if err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(codes))
	for _, ic := range codes {
		uses := make([]map[string]string, 0, len(ic.Uses))
		for _, u := range ic.Uses {
			uses = append(uses, map[string]string{"usedBy": u.UsedBy.String(), "usedAt": u.UsedAt.Format(datetime.Layout)})
		}
		out = append(out, map[string]any{
			"code": ic.Code, "available": ic.Available, "disabled": ic.Disabled, "forAccount": ic.ForAccount,
			"createdBy": ic.CreatedBy, "createdAt": ic.CreatedAt.Format(datetime.Layout), "uses": uses,
		})
	}
	return writeJSON(w, map[string]any{"codes": out})
}

func (s *Server) disableInviteCodes(w http.ResponseWriter, r *http.Request, _ caller) error {
	in, err := readInput(w, r)
	if err != nil {
		return err
	}
	codes, accounts := in.strs("codes"), in.strs("accounts")
	if in.err != nil {
		return in.err
	}
	return s.accounts.DisableInviteCodes(r.Context(), codes, accounts)
}

func (s *Server) deactivateAccount(w http.ResponseWriter, r *http.Request, c caller) error {
	if r.ContentLength != 0 {
		// deleteAfter is accepted and ignored: accounts are deleted only
		// when their owner asks.
		if _, err := readInput(w, r); err != nil {
			return err
		}
	}
	return s.accounts.Deactivate(r.Context(), c.DID)
}

func (s *Server) activateAccount(w http.ResponseWriter, r *http.Request, c caller) error {
	if r.ContentLength > 0 {
		return invalidRequest("A request body was provided when none was expected")
	}
	return s.accounts.Activate(r.Context(), c.DID)
}

// checkServiceAuthParams checks getServiceAuth's parameters before the
// session, in the official order (where they are a 500; here a 400 that
// says what is wrong).
func checkServiceAuthParams(q url.Values) error {
	_, err := serviceauth.ParseRequest(q)
	return err
}

// getServiceAuth mints a token of the caller's for another service
// (com.atproto.server.getServiceAuth); privileged methods need a full
// session or a privileged app password.
func (s *Server) getServiceAuth(w http.ResponseWriter, r *http.Request, c caller) error {
	req, err := serviceauth.ParseRequest(r.URL.Query())
	if err != nil {
		return err
	}
	token, err := s.serviceAuth.GetServiceAuth(r.Context(), c.service(), req)
	if err != nil {
		return err
	}
	return writeJSON(w, map[string]string{"token": token})
}
