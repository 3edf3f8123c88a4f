package xrpc

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/hearth-pds/hearth/account"
	"github.com/hearth-pds/hearth/store"
)

const timeLayout = "2006-01-02T15:04:05.000Z"

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
	AccessJWT       string          `json:"accessJwt,omitempty"`
	RefreshJWT      string          `json:"refreshJwt,omitempty"`
	Handle          string          `json:"handle"`
	DID             string          `json:"did"`
	DIDDoc          json.RawMessage `json:"didDoc,omitempty"`
	Email           string          `json:"email,omitempty"`
	EmailConfirmed  *bool           `json:"emailConfirmed,omitempty"`
	EmailAuthFactor *bool           `json:"emailAuthFactor,omitempty"`
	Active          *bool           `json:"active,omitempty"`
	Status          string          `json:"status,omitempty"`
}

// sessionBody renders a session. The email is shown only to full and
// privileged sessions, as the official PDS does.
func sessionBody(sess *account.Session, scope account.Scope) sessionOutput {
	a := sess.Account
	out := sessionOutput{
		AccessJWT:  sess.AccessJWT,
		RefreshJWT: sess.RefreshJWT,
		Handle:     handleOrInvalid(a),
		DID:        a.DID,
		DIDDoc:     sess.DIDDoc,
		Status:     a.Status(),
	}
	active := a.Active()
	out.Active = &active
	if scope != account.ScopeAppPass {
		confirmed, factor := a.EmailConfirmedAt != nil, false
		out.Email, out.EmailConfirmed, out.EmailAuthFactor = a.Email, &confirmed, &factor
	}
	return out
}

func handleOrInvalid(a *store.Account) string {
	if a.Handle == "" {
		return "handle.invalid"
	}
	return a.Handle
}

func (s *Server) createAccount(w http.ResponseWriter, r *http.Request, _ caller) error {
	var in struct {
		Email       string `json:"email"`
		Handle      string `json:"handle"`
		DID         string `json:"did"`
		InviteCode  string `json:"inviteCode"`
		Password    string `json:"password"`
		RecoveryKey string `json:"recoveryKey"`
	}
	if err := decodeBody(w, r, &in); err != nil {
		return err
	}
	if in.Handle == "" {
		return invalidRequest(`Input must have the property "handle"`)
	}
	sess, err := s.accounts.CreateAccount(r.Context(), account.CreateAccountInput{
		Email: in.Email, Handle: in.Handle, DID: in.DID, InviteCode: in.InviteCode,
		Password: in.Password, RecoveryKey: in.RecoveryKey,
	})
	if err != nil {
		return err
	}
	return writeJSON(w, sessionOutput{
		AccessJWT: sess.AccessJWT, RefreshJWT: sess.RefreshJWT,
		Handle: sess.Account.Handle, DID: sess.Account.DID, DIDDoc: sess.DIDDoc,
	})
}

func (s *Server) createSession(w http.ResponseWriter, r *http.Request, _ caller) error {
	var in struct {
		Identifier string `json:"identifier"`
		Password   string `json:"password"`
	}
	if err := decodeBody(w, r, &in); err != nil {
		return err
	}
	if in.Identifier == "" {
		return invalidRequest(`Input must have the property "identifier"`)
	}
	if in.Password == "" {
		return invalidRequest(`Input must have the property "password"`)
	}
	sess, err := s.accounts.CreateSession(r.Context(), in.Identifier, in.Password)
	if err != nil {
		return err
	}
	return writeJSON(w, sessionBody(sess, sess.Scope))
}

func (s *Server) getSession(w http.ResponseWriter, r *http.Request, c caller) error {
	sess, err := s.accounts.GetSession(r.Context(), c.DID)
	if err != nil {
		return err
	}
	return writeJSON(w, sessionBody(sess, c.Scope))
}

func (s *Server) refreshSession(w http.ResponseWriter, r *http.Request, c caller) error {
	sess, err := s.accounts.RefreshSession(r.Context(), c.Refresh)
	if err != nil {
		return err
	}
	out := sessionBody(sess, sess.Scope)
	out.Email, out.EmailConfirmed, out.EmailAuthFactor = "", nil, nil
	return writeJSON(w, out)
}

func (s *Server) deleteSession(w http.ResponseWriter, r *http.Request, c caller) error {
	return s.accounts.DeleteSession(r.Context(), c.Refresh)
}

func (s *Server) createAppPassword(w http.ResponseWriter, r *http.Request, c caller) error {
	var in struct {
		Name       string `json:"name"`
		Privileged bool   `json:"privileged"`
	}
	if err := decodeBody(w, r, &in); err != nil {
		return err
	}
	if in.Name == "" {
		return invalidRequest(`Input must have the property "name"`)
	}
	p, err := s.accounts.CreateAppPassword(r.Context(), c.DID, in.Name, in.Privileged)
	if err != nil {
		return err
	}
	return writeJSON(w, map[string]any{
		"name": p.Name, "password": p.Password, "createdAt": p.CreatedAt.Format(timeLayout), "privileged": p.Privileged,
	})
}

func (s *Server) listAppPasswords(w http.ResponseWriter, r *http.Request, c caller) error {
	list, err := s.accounts.ListAppPasswords(r.Context(), c.DID)
	if err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(list))
	for _, p := range list {
		out = append(out, map[string]any{"name": p.Name, "createdAt": p.CreatedAt.Format(timeLayout), "privileged": p.Privileged})
	}
	return writeJSON(w, map[string]any{"passwords": out})
}

func (s *Server) revokeAppPassword(w http.ResponseWriter, r *http.Request, c caller) error {
	var in struct {
		Name string `json:"name"`
	}
	if err := decodeBody(w, r, &in); err != nil {
		return err
	}
	if in.Name == "" {
		return invalidRequest(`Input must have the property "name"`)
	}
	return s.accounts.RevokeAppPassword(r.Context(), c.DID, in.Name)
}

func (s *Server) createInviteCode(w http.ResponseWriter, r *http.Request, _ caller) error {
	var in struct {
		UseCount   *int   `json:"useCount"`
		ForAccount string `json:"forAccount"`
	}
	if err := decodeBody(w, r, &in); err != nil {
		return err
	}
	if in.UseCount == nil {
		return invalidRequest(`Input must have the property "useCount"`)
	}
	var forAccounts []string
	if in.ForAccount != "" {
		forAccounts = []string{in.ForAccount}
	}
	groups, err := s.accounts.CreateInviteCodes(r.Context(), 1, *in.UseCount, forAccounts)
	if err != nil {
		return err
	}
	return writeJSON(w, map[string]string{"code": groups[0].Codes[0]})
}

func (s *Server) createInviteCodes(w http.ResponseWriter, r *http.Request, _ caller) error {
	var in struct {
		CodeCount   *int     `json:"codeCount"`
		UseCount    *int     `json:"useCount"`
		ForAccounts []string `json:"forAccounts"`
	}
	if err := decodeBody(w, r, &in); err != nil {
		return err
	}
	if in.UseCount == nil {
		return invalidRequest(`Input must have the property "useCount"`)
	}
	count := 1
	if in.CodeCount != nil {
		count = *in.CodeCount
	}
	groups, err := s.accounts.CreateInviteCodes(r.Context(), count, *in.UseCount, in.ForAccounts)
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
	includeUsed, err := boolParam(r, "includeUsed", true)
	if err != nil {
		return err
	}
	if _, err := boolParam(r, "createAvailable", true); err != nil {
		return err
	}
	codes, err := s.accounts.AccountInviteCodes(r.Context(), c.DID, includeUsed)
	if err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(codes))
	for _, ic := range codes {
		uses := make([]map[string]string, 0, len(ic.Uses))
		for _, u := range ic.Uses {
			uses = append(uses, map[string]string{"usedBy": u.UsedBy, "usedAt": u.UsedAt.Format(timeLayout)})
		}
		out = append(out, map[string]any{
			"code": ic.Code, "available": ic.Available, "disabled": ic.Disabled, "forAccount": ic.ForAccount,
			"createdBy": ic.CreatedBy, "createdAt": ic.CreatedAt.Format(timeLayout), "uses": uses,
		})
	}
	return writeJSON(w, map[string]any{"codes": out})
}

func (s *Server) disableInviteCodes(w http.ResponseWriter, r *http.Request, _ caller) error {
	var in struct {
		Codes    []string `json:"codes"`
		Accounts []string `json:"accounts"`
	}
	if err := decodeBody(w, r, &in); err != nil {
		return err
	}
	return s.accounts.DisableInviteCodes(r.Context(), in.Codes, in.Accounts)
}

// boolParam reads an optional boolean query parameter.
func boolParam(r *http.Request, name string, def bool) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil || (v != "true" && v != "false") {
		return false, invalidRequest(name + " must be a boolean")
	}
	return b, nil
}
